"""The offline fake NaviLink cloud: REST + AWS-IoT-like broker + one agent per simulated device.

``async with FakeCloud() as fc:`` then point a client at ``fc.client_overrides()`` (or
``fc.env()``). Everything binds 127.0.0.1; fault methods reproduce docs/protocol.md section 7.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .agent import DeviceAgent, Latency
from .broker import FakeBroker
from .clock import SimClock
from .hostile import HostileProfile
from .model import DeviceModel
from .rest import API_PREFIX, FakeRest, TokenStore

log = logging.getLogger(__name__)

DEMO_EMAIL = "demo@navilink.local"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - the fake's public demo account
PUSH_INTERVAL_S = 1.0


def build_devices(n_devices: int, *, seed: int, start: datetime, timezone: str = "UTC") -> list[DeviceModel]:
    """``n_devices`` simulated heaters, deterministic in ``seed``: sizes, places and both firmware
    profiles vary across the fleet; households keep local hours in ``timezone``. The plant is
    imported lazily (only the default needs it)."""
    from .device import SimulatedDevice
    from .weather import LOCATIONS

    rng = random.Random(seed)
    devices: list[DeviceModel] = []
    macs: set[str] = set()
    for i in range(n_devices):
        mac = "04786332" + f"{rng.getrandbits(16):04x}"  # the capture's OUI, random suffix
        while mac in macs:
            mac = "04786332" + f"{rng.getrandbits(16):04x}"
        macs.add(mac)
        devices.append(SimulatedDevice(
            mac, seed=seed * 1000 + i, start=start,
            volume_gal=(65, 50, 80)[i % 3], firmware=("2025-09", "2025-10")[i % 2],
            location=LOCATIONS[(i + 1) % len(LOCATIONS)],
            additional_value=str(5322 + i), home_seq=25004 + i, ems_tz=timezone,
        ))  # fmt: skip
    return devices


class FakeCloud:
    """REST on ``rest_base_url``, MQTT on ``wss://localhost:<iot_port>/mqtt`` (CA in ``ca_file``).

    ``hostile=True`` (or a ``HostileProfile``) mixes bad entries and messages into the good ones and
    records them in ``fc.hostile.ledger`` (``sim/hostile.py``).
    """

    demo_email = DEMO_EMAIL
    demo_password = DEMO_PASSWORD
    iot_endpoint = FakeBroker.endpoint

    def __init__(
        self,
        devices: Sequence[DeviceModel] | None = None,
        *,
        n_devices: int = 1,
        speed: float = 1.0,
        seed: int = 0,
        latency_s: Latency = 0.0,
        accounts: dict[str, str] | None = None,
        start: datetime | None = None,
        timezone: str = "UTC",
        authorization_expires_in: int = 3600,
        verify_signature: bool = True,
        mirror_pushes: bool = False,
        disconnect_on_expiry: bool = True,
        push_interval_s: float = PUSH_INTERVAL_S,
        polling_interval: int = 10,
        hostile: bool | HostileProfile = False,
        owners: dict[str, str] | None = None,
    ) -> None:
        """``accounts`` maps e-mail -> password; ``owners`` maps a device MAC to the one account that
        lists it (unnamed devices are listed on every account); ``set_owners`` after start."""
        self.clock = SimClock(start, speed)
        self.seed = seed
        self._given_devices = list(devices) if devices is not None else None
        self._n_devices = n_devices
        self._timezone = timezone
        self.devices: list[DeviceModel] = []
        self.latency_s = latency_s
        self.accounts = dict(accounts) if accounts is not None else {DEMO_EMAIL: DEMO_PASSWORD}
        self._owners = dict(owners or {})
        self.tokens = TokenStore()
        self.tokens.authorization_s = authorization_expires_in
        self.mirror_pushes = mirror_pushes
        self.disconnect_on_expiry = disconnect_on_expiry
        self.push_interval_s = push_interval_s
        self.polling_interval = polling_interval
        self.agents: dict[str, DeviceAgent] = {}
        self.broker = FakeBroker(self.tokens.aws_secret, verify_signature=verify_signature,
                                 on_publish=self._on_publish)  # fmt: skip
        self.rest: FakeRest | None = None
        self._runner: web.AppRunner | None = None
        self._rest_port: int | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._started = False
        self.max_connection_s: float | None = None  # AWS IoT: 24 h
        self.hangups_per_hour = 0.0
        self._fault_rng = random.Random(seed + 1)
        # the hostile profile: bad entries and messages mixed in, each written to hostile.ledger
        self.hostile: HostileProfile | None = (
            hostile if isinstance(hostile, HostileProfile) else HostileProfile() if hostile else None)

    # -- lifecycle

    async def __aenter__(self) -> FakeCloud:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._started:
            return
        self.devices = (
            self._given_devices
            if self._given_devices is not None
            else build_devices(self._n_devices, seed=self.seed, start=self.clock.start, timezone=self._timezone)
        )
        macs = [d.mac for d in self.devices]
        if len(set(macs)) != len(macs):
            raise ValueError("device MAC addresses must be unique")
        rng = random.Random(self.seed)
        publish = self.broker.publish if self.hostile is None else self._publish_recorded
        for d in self.devices:
            self.agents[d.mac] = DeviceAgent(
                d, self.clock, publish, latency_s=self.latency_s,
                rng=random.Random(rng.getrandbits(64)), mirror_pushes=self.mirror_pushes,
            )  # fmt: skip
        if self.hostile is not None and self.devices:
            self.agents[self.devices[0].mac].energy_hook = self.hostile.energy_reply
        self.rest = FakeRest(self.devices, self.accounts, self.tokens, self._is_online)
        self.rest.hostile = self.hostile
        self.rest.owners = self._owners
        self._runner = web.AppRunner(self.rest.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server  # an asyncio.Server once started
        self._rest_port = int(server.sockets[0].getsockname()[1])
        await self.broker.start()
        self._ticker = asyncio.create_task(self._tick_loop(), name="fake-cloud-ticker")
        self._started = True
        log.info("fake NaviLink cloud: REST %s, MQTT wss://%s:%d/mqtt, %d device(s), speed %g",
                 self.rest_base_url, self.iot_endpoint, self.iot_port, len(self.devices), self.clock.speed)

    async def stop(self) -> None:
        try:
            if self._ticker is not None:
                self._ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._ticker
                self._ticker = None
            for agent in self.agents.values():
                await agent.close()
        finally:  # the broker owns the temporary CA folder: always stop it
            try:
                await self.broker.stop()
            finally:
                if self._runner is not None:
                    runner, self._runner = self._runner, None
                    await runner.cleanup()
                self._started = False

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.push_interval_s)
            for agent in list(self.agents.values()):
                try:
                    await agent.tick()
                except Exception:
                    log.exception("device %s tick failed", agent.device.mac)
            try:
                await self._connection_faults()
            except Exception:
                log.exception("connection fault check failed")
            if self.hostile is not None:
                try:
                    await self.hostile.tick(self._push_targets(), self.broker.publish)
                except Exception:
                    log.exception("hostile profile tick failed")

    def _push_targets(self) -> list[tuple[str, str, str, str]]:
        out = []
        for mac, agent in self.agents.items():
            target = agent.push_target()
            if target is not None and not agent.offline:
                out.append((mac, *target))
        return out

    async def _publish_recorded(self, topic: str, payload: bytes) -> None:
        assert self.hostile is not None
        self.hostile.record_good(topic, payload)
        await self.broker.publish(topic, payload)

    async def _connection_faults(self) -> None:
        if self.disconnect_on_expiry and (n := await self.broker.disconnect_invalid()):
            log.info("disconnected %d client(s) whose AWS credentials expired", n)
        if self.max_connection_s is not None and (n := await self.broker.disconnect_older_than(self.max_connection_s)):
            log.info("disconnected %d client(s) at the connection age limit", n)
        if self.hangups_per_hour > 0:
            p = min(1.0, self.hangups_per_hour * self.push_interval_s / 3600)
            if n := await self.broker.disconnect_random(p, self._fault_rng):
                log.info("random hang-up of %d client(s)", n)

    def _on_publish(self, topic: str, payload: bytes) -> None:
        for agent in self.agents.values():
            agent.on_message(topic, payload)

    def _is_online(self, mac: str) -> bool:
        agent = self.agents.get(mac)
        return agent is not None and not agent.offline

    # -- where clients connect

    @property
    def rest_base_url(self) -> str:
        if self._rest_port is None:
            raise RuntimeError("FakeCloud not started")
        return f"http://127.0.0.1:{self._rest_port}{API_PREFIX}"

    @property
    def iot_port(self) -> int:
        return self.broker.port

    @property
    def ca_file(self) -> Path:
        return self.broker.ca_file

    def client_overrides(self) -> dict[str, Any]:
        """``NaviLinkConfig`` keyword arguments that point a client at this fake."""
        return {
            "email": self.demo_email, "password": self.demo_password,
            "rest_base_url": self.rest_base_url, "iot_endpoint": self.iot_endpoint,
            "iot_port": self.iot_port, "ca_file": self.ca_file,
            "polling_interval": self.polling_interval,
        }  # fmt: skip

    def env(self) -> dict[str, str]:
        """The same settings as ``NAVILINK_*`` environment variables."""
        return {f"NAVILINK_{k.upper()}": str(v) for k, v in self.client_overrides().items()}

    def set_owners(self, owners: dict[str, str]) -> None:
        """Give devices to accounts (MAC -> e-mail; accounts are added with ``add_account``)."""
        self._owners.update(owners)

    def add_account(self, email: str, password: str) -> None:
        self.accounts[email] = password

    def device(self, mac: str) -> DeviceModel:
        return self.agents[mac].device

    # -- faults

    def set_offline(self, mac: str, offline: bool = True) -> None:
        """Device offline: REST ``connected`` 1 and no MQTT answers or pushes."""
        self.agents[mac].offline = offline

    def drop_replies(self, probability: float) -> None:
        """Each reply (not push) is silently lost with this probability."""
        for agent in self.agents.values():
            agent.drop_probability = probability

    def malformed_next(self, mac: str, n: int) -> None:
        """The device's next ``n`` replies are truncated JSON / carry a non-integer status field."""
        self.agents[mac].malformed_left = n

    def set_latency(self, latency_s: Latency) -> None:
        for agent in self.agents.values():
            agent.latency_s = latency_s

    def rest_fail_next(self, n: int, status: int = 503) -> None:
        assert self.rest is not None
        self.rest.fail_next, self.rest.fail_status = n, status

    def rest_delay(self, seconds: float) -> None:
        assert self.rest is not None
        self.rest.delay_s = seconds

    def rest_forbid(self, *routes: str) -> None:
        """Answer 403 on these routes (e.g. "device/info", "device/firmware/info"); none clears."""
        assert self.rest is not None
        self.rest.forbidden = set(routes)

    def set_unauthorized_response(self, status: int = 401, body: dict[str, Any] | None = None) -> None:
        assert self.rest is not None
        self.rest.unauthorized_status = status
        self.rest.unauthorized_body = body if body is not None else {"code": status, "msg": "UNAUTHORIZED", "data": None}

    def set_lock_after(self, bad_tries: int | None) -> None:
        assert self.rest is not None
        self.rest.lock_after = bad_tries

    def set_refresh_rotation(self, rotate: bool) -> None:
        self.tokens.rotate_refresh = rotate

    def set_token_ttl(self, authentication_s: float | None = None, authorization_s: float | None = None) -> None:
        """Lifetimes (real seconds) of tokens issued from now on."""
        if authentication_s is not None:
            self.tokens.authentication_s = authentication_s
        if authorization_s is not None:
            self.tokens.authorization_s = authorization_s

    async def force_disconnect(self) -> int:
        """Drop every MQTT connection now; returns how many were dropped."""
        return await self.broker.disconnect_all()

    async def expire_credentials(self, *, rest: bool = True, aws: bool = True) -> int:
        """Expire every issued token / AWS key; connections using those keys are dropped."""
        self.tokens.expire(rest=rest, aws=aws)
        return await self.broker.disconnect_invalid() if aws else 0

    def set_connection_limits(self, max_age_s: float | None = None, hangups_per_hour: float = 0.0) -> None:
        """Drop connections older than ``max_age_s`` (AWS: 24 h) and at random at this rate."""
        self.max_connection_s, self.hangups_per_hour = max_age_s, hangups_per_hour

    async def broker_down(self, seconds: float) -> None:
        """Stop the MQTT listener (dropping everyone) and restart it on the same port later."""
        await self.broker.down(seconds)

    def stats(self) -> dict[str, Any]:
        rest_calls = dict(self.rest.calls) if self.rest else {}
        return {
            "rest_calls": rest_calls,
            "mqtt_clients": self.broker.connected_client_ids(),
            "upgrades_accepted": self.broker.accepted_upgrades,
            "upgrades_refused": self.broker.refused_upgrades,
            "replies": {m: a.replies_sent for m, a in self.agents.items()},
            "pushes": {m: a.pushes_sent for m, a in self.agents.items()},
        }
