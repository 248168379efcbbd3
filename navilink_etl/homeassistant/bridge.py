"""The Home Assistant sink: cloud status -> MQTT discovery/state, HA commands -> the cloud client.

``HomeAssistantBridge(client, config)`` listens to the cloud client's messages (no collector hook
needed); ``await start()`` / ``await stop()``. Commands are taken only from the configured broker,
run once each, and their outcome is published on ``navilink/<mac>/command_result``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import secrets
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import aiomqtt
import orjson

from ..config import NaviLinkConfig
from ..errors import NaviLinkError, PayloadError, ValidationError
from ..identity import normalize_mac
from ..protocol import DhwMode
from ..status import DeviceStatus, parse_status
from .discovery import (
    BASE_TOPIC,
    BRIDGE_AVAILABILITY,
    DEVICE_MODE,
    OFFLINE,
    ONLINE,
    PAYLOAD_OFF,
    PAYLOAD_ON,
    HeaterIdentity,
    Topics,
    command_topics_filter,
    discovery_messages,
    energy_payload,
    state_payload,
)
from .energy import energy_totals
from .target import PublishTarget, parse_publish_url, register_secret

log = logging.getLogger(__name__)

EnergyReader = Callable[[NaviLinkConfig, str], dict[str, Any]]
ENERGY_KEYS = ("heat_pump_kwh", "element_kwh", "total_kwh")
_TOPIC_MAC = re.compile(r"navilink-([0-9a-fA-F]{12})(?:/|$)")
COMMAND_QUEUE = 16


def _sw_version() -> str | None:
    try:
        return version("navilink-etl")
    except PackageNotFoundError:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _json(obj: Any) -> bytes:
    return orjson.dumps(obj, default=str)


class HomeAssistantBridge:
    """Publishes every heater the cloud client sees to Home Assistant over MQTT discovery."""

    def __init__(self, client: Any, config: NaviLinkConfig, target: PublishTarget | str | None = None, *,
                 discovery_prefix: str | None = None, base: str = BASE_TOPIC,
                 energy_interval_s: float = 900.0, energy_reader: EnergyReader | None = None,
                 stale_after_s: float | None = None, reconnect_max_s: float = 300.0) -> None:
        tgt = target if target is not None else config.publish_target
        if isinstance(tgt, str):
            tgt = parse_publish_url(tgt)
        if tgt is None:
            raise ValueError("no broker: pass a target or set NAVILINK_PUBLISH_URL")
        register_secret(tgt)
        self.target: PublishTarget = tgt
        self._cloud = client
        self.config = config
        self.prefix = discovery_prefix or config.ha_discovery_prefix
        self.base = base
        self.energy_interval_s = energy_interval_s
        self._energy_reader = energy_reader or energy_totals
        self.stale_after_s = stale_after_s or max(3.0 * config.polling_interval, 180.0)
        self.reconnect_max_s = reconnect_max_s
        self.client_id = f"navilink-etl-ha-{secrets.token_hex(4)}"
        self._mq: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._unlisten: Callable[[], None] | None = None
        self._latest: dict[str, DeviceStatus] = {}
        self._last_seen: dict[str, float] = {}
        self._online: dict[str, bool] = {}
        self._announced: dict[str, HeaterIdentity] = {}  # identity last sent in discovery, per MAC
        self._energy: dict[str, dict[str, Any]] = {}
        self._energy_floor: dict[str, dict[str, float]] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._energy_wake = asyncio.Event()  # a heater seen for the first time: read its totals now
        self._commands: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue(COMMAND_QUEUE)
        self.commands_run = 0

    def __repr__(self) -> str:
        return f"HomeAssistantBridge(target={self.target.display!r}, prefix={self.prefix!r})"

    # --- lifecycle ----------------------------------------------------------------------------------
    async def start(self, wait_s: float = 5.0) -> None:
        """Listen to the cloud client and connect (retrying in the background); never raises on a
        broker that is down, it logs and keeps trying."""
        log.info("publishing to Home Assistant via %s (discovery prefix %r)", self.target.display, self.prefix)
        self._unlisten = self._cloud.add_message_listener(self._on_cloud_message)
        self._tasks = [asyncio.create_task(self._run(), name="ha-mqtt"),
                       asyncio.create_task(self._command_worker(), name="ha-commands"),
                       asyncio.create_task(self._energy_loop(), name="ha-energy"),
                       asyncio.create_task(self._watchdog(), name="ha-watchdog")]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), wait_s)
        if not self.connected.is_set():
            log.warning("Home Assistant broker %s not reached yet; still trying", self.target.display)

    async def stop(self) -> None:
        """Mark everything offline (retained), disconnect and stop listening."""
        self._stopping = True
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._mq is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(5):
                    for mac in list(self._announced):
                        await self._mq.publish(Topics(mac, self.base).availability, OFFLINE, qos=1, retain=True)
                    await self._mq.publish(BRIDGE_AVAILABILITY, OFFLINE, qos=1, retain=True)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # --- MQTT connection ----------------------------------------------------------------------------
    def _new_client(self) -> aiomqtt.Client:
        t = self.target
        return aiomqtt.Client(
            t.host, t.port, username=t.username, password=t.password_value, identifier=self.client_id,
            will=aiomqtt.Will(BRIDGE_AVAILABILITY, OFFLINE, qos=1, retain=True),
            tls_context=ssl.create_default_context() if t.tls else None, keepalive=60, timeout=10,
        )

    async def _run(self) -> None:
        delay = 1.0
        while not self._stopping:
            try:
                async with self._new_client() as mq:
                    self._mq = mq
                    await self._on_connect(mq)
                    self.connected.set()
                    delay = 1.0
                    log.info("connected to the Home Assistant broker %s", self.target.display)
                    publisher = asyncio.create_task(self._publisher(mq))
                    try:
                        async for msg in mq.messages:
                            await self._on_broker_message(msg)
                    finally:
                        publisher.cancel()
                        await asyncio.gather(publisher, return_exceptions=True)
            except aiomqtt.MqttError as exc:
                if self._stopping:
                    break
                log.warning("Home Assistant broker %s: %s; retrying in %.0f s", self.target.display, exc, delay)
            except Exception:  # a bug must not end publishing for the rest of the run
                log.exception("Home Assistant sink failed; reconnecting in %.0f s", delay)
            finally:
                self._mq = None
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2.0, self.reconnect_max_s)

    async def _on_connect(self, mq: aiomqtt.Client) -> None:
        await mq.subscribe(command_topics_filter(self.base), qos=1)
        await mq.subscribe(f"{self.prefix}/status", qos=1)  # HA's birth: re-announce on "online"
        await mq.subscribe(f"{self.base}/+/energy", qos=1)  # our retained totals: never publish less
        await mq.publish(BRIDGE_AVAILABILITY, ONLINE, qos=1, retain=True)
        self._announced.clear()
        self._online.clear()
        self._dirty.update(self._known_macs())
        for mac in list(self._energy):
            await self._publish_energy(mac)
        self._wake.set()

    async def _publisher(self, mq: aiomqtt.Client) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                mac = self._dirty.pop()
                try:
                    await self._publish_state(mq, mac)
                except aiomqtt.MqttError:
                    self._dirty.add(mac)  # the connection is going: the next one sends it
                    raise
                except Exception:
                    log.exception("Home Assistant state for %s not published", mac)

    async def _publish_state(self, mq: aiomqtt.Client, mac: str) -> None:
        await self._announce(mac)
        st = self._latest.get(mac)
        if st is not None:
            if self._online.get(mac) is not True and self._fresh(mac):
                await self._set_online(mac, True)
            await mq.publish(Topics(mac, self.base).state, _json(state_payload(st)), qos=1, retain=True)

    async def _announce(self, mac: str) -> None:
        """Publish (retained) discovery for ``mac`` unless HA already has this identity."""
        ident = self._identity(mac)
        if self._announced.get(mac) == ident or self._mq is None:
            return
        for topic, payload in discovery_messages(ident, self.prefix, base=self.base, sw_version=_sw_version()):
            await self._mq.publish(topic, _json(payload), qos=1, retain=True)
        self._announced[mac] = ident
        log.info("Home Assistant discovery published for %s (%s)", mac, ident.name)

    async def _set_online(self, mac: str, online: bool) -> None:
        if self._mq is None:
            return
        await self._mq.publish(Topics(mac, self.base).availability, ONLINE if online else OFFLINE, qos=1, retain=True)
        self._online[mac] = online

    # --- cloud side ---------------------------------------------------------------------------------
    def _known_macs(self) -> set[str]:
        return {d.mac for d in getattr(self._cloud, "devices", [])} | set(self._latest)

    def _identity(self, mac: str) -> HeaterIdentity:
        dev = self._cloud.device(mac)
        return HeaterIdentity.from_device(dev) if dev is not None else HeaterIdentity(mac, f"NWP500 {mac[-4:]}")

    def _fresh(self, mac: str) -> bool:
        seen = self._last_seen.get(mac)
        return seen is not None and time.monotonic() - seen <= self.stale_after_s

    def _on_cloud_message(self, topic: str, payload: bytes, received_at: datetime) -> None:
        """Cloud client listener: keep the newest status per heater and wake the publisher."""
        try:
            st = parse_status(payload, received_at=received_at)
        except PayloadError:
            return  # requests echoed back, DID/energy replies, malformed messages: not status
        mac = normalize_mac(st.mac) if st.mac else None
        if mac is None:
            m = _TOPIC_MAC.search(topic)
            mac = m.group(1).lower() if m else None
        if mac is None:
            return
        self._remember(mac, st)

    def _remember(self, mac: str, st: DeviceStatus) -> None:
        if mac not in self._latest and mac not in self._energy:
            self._energy_wake.set()
        self._latest[mac] = st
        self._last_seen[mac] = time.monotonic()
        self._dirty.add(mac)
        self._wake.set()

    async def _watchdog(self) -> None:
        """Mark a heater offline in HA when no status arrived for ``stale_after_s``."""
        while True:
            await asyncio.sleep(min(30.0, self.stale_after_s / 4))
            for mac in list(self._last_seen):
                if not self._fresh(mac) and self._online.get(mac) is not False and self.connected.is_set():
                    log.info("no status from %s for %.0f s: unavailable in Home Assistant", mac, self.stale_after_s)
                    with contextlib.suppress(aiomqtt.MqttError):
                        await self._set_online(mac, False)

    # --- energy -------------------------------------------------------------------------------------
    async def _energy_loop(self) -> None:
        while True:
            self._energy_wake.clear()
            await self.refresh_energy()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._energy_wake.wait(), self.energy_interval_s)

    async def refresh_energy(self) -> None:
        """Re-read every heater's totals from the warehouse and publish them."""
        for mac in sorted(self._known_macs()):
            try:
                totals = await asyncio.to_thread(self._energy_reader, self.config, mac)
            except Exception as exc:  # a locked or half-built warehouse: try again next round
                log.warning("energy totals for %s not read from the warehouse: %s", mac, exc)
                continue
            self._energy[mac] = self._no_decrease(mac, totals)
            with contextlib.suppress(aiomqtt.MqttError):
                await self._publish_energy(mac)

    def _no_decrease(self, mac: str, totals: dict[str, Any]) -> dict[str, Any]:
        """HA reads a drop in a ``total_increasing`` sensor as a meter reset: never publish one."""
        floor = self._energy_floor.setdefault(mac, {})
        out = dict(totals)
        for k in ENERGY_KEYS:
            v = out.get(k)
            if isinstance(v, int | float) and math.isfinite(v):
                if v < floor.get(k, -math.inf):
                    log.debug("%s %s from the warehouse (%.3f) below the published %.3f: keeping it",
                              mac, k, v, floor[k])
                    out[k] = floor[k]
                floor[k] = out[k]
            elif k in floor:
                out[k] = floor[k]
        return out

    async def _publish_energy(self, mac: str) -> None:
        if self._mq is None or mac not in self._energy:
            return
        await self._announce(mac)
        await self._mq.publish(Topics(mac, self.base).energy, _json(energy_payload(self._energy[mac])),
                               qos=1, retain=True)

    # --- HA side ------------------------------------------------------------------------------------
    async def _on_broker_message(self, msg: aiomqtt.Message) -> None:
        topic = str(msg.topic)
        payload = msg.payload if isinstance(msg.payload, bytes | bytearray) else str(msg.payload or "").encode()
        parts = topic.split("/")
        if topic == f"{self.prefix}/status":
            if bytes(payload).strip() == ONLINE.encode():
                log.info("Home Assistant came online: announcing again")
                self._announced.clear()
                self._dirty.update(self._known_macs())
                self._wake.set()
            return
        if len(parts) == 3 and parts[0] == self.base and parts[2] == "energy":
            self._seed_floor(parts[1], bytes(payload))
            return
        if len(parts) == 4 and parts[0] == self.base and parts[2] == "set":
            mac, what = parts[1], parts[3]
            text = bytes(payload).decode("utf-8", errors="replace").strip()[:64]
            if not text:  # an empty publish clears a retained message: nothing to do
                return
            if msg.retain:  # a stale command kept by the broker must not run again
                log.warning("ignoring a retained %s command for %s (publish commands without retain)", what, mac)
                return
            try:
                self._commands.put_nowait((mac, what, text))
            except asyncio.QueueFull:
                await self._report(mac, what, text, False, "refused: too many commands waiting")

    def _seed_floor(self, mac: str, payload: bytes) -> None:
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(obj, dict) or normalize_mac(mac) != mac:
            return
        floor = self._energy_floor.setdefault(mac, {})
        for k in ENERGY_KEYS:
            v = obj.get(k)
            if isinstance(v, int | float) and math.isfinite(v):
                floor[k] = max(float(v), floor.get(k, -math.inf))

    async def _command_worker(self) -> None:
        while True:
            mac, what, text = await self._commands.get()
            try:
                await self._run_command(mac, what, text)
            except Exception:
                log.exception("Home Assistant %s command for %s failed unexpectedly", what, mac)

    async def _run_command(self, mac: str, what: str, text: str) -> None:
        """Carry out one HA command once; a refusal or failure is reported, never retried."""
        device = self._cloud.device(mac) if normalize_mac(mac) == mac else None
        if device is None:
            await self._report(mac, what, text, False, "refused: unknown heater")
            return
        self.commands_run += 1
        log.info("Home Assistant command for %s: %s = %r", mac, what, text)
        try:
            echo = await self._execute(device, what, text)
        except ValidationError as exc:
            await self._report(mac, what, text, False, f"refused: {exc.message}")
        except NaviLinkError as exc:
            await self._report(mac, what, text, False, f"failed: {exc.message}")
        else:
            if echo is not None:
                self._remember(mac, echo)
            await self._report(mac, what, text, True, "ok")
            return
        if mac in self._latest:  # HA shows what it asked for until told otherwise: resend the truth
            self._dirty.add(mac)
            self._wake.set()

    async def _execute(self, device: Any, what: str, text: str) -> DeviceStatus | None:
        if what == "temperature":
            try:
                c = float(text)
            except ValueError:
                raise ValidationError(f"temperature {text!r} is not a number") from None
            if not math.isfinite(c):
                raise ValidationError(f"temperature {text!r} is not a number")
            return await device.set_temperature(c * 9.0 / 5.0 + 32.0)
        if what == "power":
            if text.upper() not in (PAYLOAD_ON, PAYLOAD_OFF):
                raise ValidationError(f"power must be {PAYLOAD_ON} or {PAYLOAD_OFF}, got {text!r}")
            return await (device.power_on() if text.upper() == PAYLOAD_ON else device.power_off())
        if what == "mode":
            if text == "off":
                return await device.power_off()
            mode = DEVICE_MODE.get(text)
            if mode is None:
                raise ValidationError(f"mode {text!r} is not one of off, {', '.join(DEVICE_MODE)}")
            last = self._latest.get(device.mac)
            if last is not None and last.dhw_mode == DhwMode.POWER_OFF:
                await device.power_on()
            return await device.set_dhw_mode(mode)
        raise ValidationError(f"unknown command {what!r} (temperature, mode or power)")

    async def _report(self, mac: str, what: str, value: str, ok: bool, summary: str) -> None:
        result = {"command": what, "value": value, "ok": ok, "summary": f"{what} {value}: {summary}"[:250],
                  "at": _now()}
        if ok:
            log.info("Home Assistant %s command for %s done", what, mac)
        else:
            log.warning("Home Assistant %s command %r for %s %s (not retried)", what, value, mac, summary)
        if self._mq is not None and normalize_mac(mac) == mac:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._mq.publish(Topics(mac, self.base).command_result, _json(result), qos=1, retain=True)
