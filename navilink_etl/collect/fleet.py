"""One collector, several accounts, one shard: ``FleetClient`` looks like one cloud client.

Each account gets its own ``NaviLinkClient`` (own sign-in, own MQTT connections) that lists only
the devices this shard owns (``shard.Shard``); the collector sees the union. Client ids are
``navilink-etl-s<k>of<n>-<start><random>[-c<i>]`` (``shard.fleet_client_id``).

Moving devices (N changes, collectors restarted one by one). For a while two collectors may own a
device: the old one (old N) and the new one. Both are subscribed to its topics; every request
arrives on the device's topics too, and every reply or push names its addressee in the topic
(``<gateway>/<clientID>/res``). The rules:

* Handover: a collector that sees another collector of the fleet poll one of its devices, where
  that collector's own K/N gives it the device and it started later (the newer configuration),
  leaves the device to it at its next device-list refresh: two collectors poll one device at once
  for at most one device-list refresh. Should the newer one stop polling it, it is taken back at
  the following refresh.
* Exactly once: a message addressed to collector F is decided by one predicate every collector
  evaluates alike, ``P`` = "F polled the device again within ``hold_s`` (two poll intervals) of the
  message". F keeps a message if ``P`` (it is still polling), another collector keeps it if not
  ``P`` (F stopped, restarted or handed the device over). While nobody newer polls the device, F
  stores its messages at once (``P`` holds as long as it polls); otherwise both sides hold the
  message for ``hold_s`` and then decide. A message addressed to a client that is no collector of
  the fleet (a phone app) is stored by every collector polling the device (twice only during the
  overlap). A message that reached a new collector before its own first poll of the device,
  addressed to a collector then polling it, is that collector's (it did not know of the new one
  yet and stored it at once). Nothing is lost; a message can be stored twice only in the rare race
  of a reply crossing the new collector's first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson

from ..cloud.client import NaviLinkClient
from ..config import NaviLinkConfig
from ..errors import InvalidCredentialsError
from ..identity import is_mac
from ..protocol import mac_from_topic
from .accounts import Account
from .shard import FleetId, Shard, fleet_client_id, owner

log = logging.getLogger("navilink_etl.collect")

Listener = Callable[[str, bytes, Any], object]


def addressee(topic: str) -> str | None:
    """The client id a device message is addressed to, from its topic (None when it names none)."""
    parts = topic.split("/", 5)
    if len(parts) >= 5 and parts[2].startswith("navilink-") and parts[4] == "res":
        return parts[3]  # cmd/52/navilink-<mac>/<clientID>/res[/...]
    if len(parts) >= 4 and parts[3] == "res":
        return parts[2]  # cmd/52/<clientID>/res/...
    return None


@dataclass
class _Held:
    cb: Listener
    topic: str
    payload: bytes
    received_at: Any
    mac: str
    to: str
    arrived: float  # monotonic
    own: bool  # addressed to this collector
    handle: asyncio.TimerHandle | None = None


class FleetClient:
    """The collector's cloud client for several accounts and one shard (``async with``)."""

    def __init__(self, config: NaviLinkConfig, accounts: list[Account], shard: Shard, *,
                 hold_s: float = 60.0) -> None:
        if not accounts:
            raise ValueError("at least one account")
        self.config = config
        self.shard = shard
        self.hold_s = hold_s
        self.started = time.time()
        explicit = config.client_id if len(accounts) == 1 else None
        self.me = FleetId(shard, int(self.started))
        self.clients = [
            NaviLinkClient(config, email=a.email, password=a.password,
                           client_id=explicit or fleet_client_id(shard, self.started),
                           device_filter=self._wanted)
            for a in accounts]  # fmt: skip
        self._stack: contextlib.AsyncExitStack | None = None
        # mac -> {another fleet collector's client id -> when its last request for the device was seen}
        self._requests: dict[str, dict[str, float]] = {}
        self._first_poll: dict[str, float] = {}  # mac -> when this collector's first request for it was seen
        self._held_items: dict[int, _Held] = {}
        self.handed_over: dict[str, str] = {}  # mac -> the newer collector's client id
        self.counts = {"held": 0, "left_to_owner": 0, "stored_held": 0}

    def __repr__(self) -> str:
        return f"FleetClient(shard={self.shard}, accounts={len(self.clients)})"

    async def __aenter__(self) -> FleetClient:
        stack = contextlib.AsyncExitStack()
        try:
            for c in self.clients:
                await stack.enter_async_context(c)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release_held()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    # --- ownership ---------------------------------------------------------------------------
    def _wanted(self, mac: str) -> bool:
        if not self.shard.owns(mac):
            return False
        newer = self.newer_owner(mac)
        if newer is None:
            if self.handed_over.pop(mac, None) is not None:
                log.warning("device %s: the collector it was handed over to stopped polling it; "
                            "polling it again", mac)
            return True
        if mac not in self.handed_over:
            log.warning("device %s: collector %s (a newer configuration) polls it; handing it over",
                        mac, newer)
        self.handed_over[mac] = newer
        return False

    def newer_owner(self, mac: str) -> str | None:
        """A collector that polled ``mac`` lately, owns it by its own K/N and started after this one."""
        recent = time.monotonic() - 1.5 * self.hold_s
        mine = self.client_ids
        for cid, at in self._requests.get(mac, {}).items():
            if at < recent or cid in mine:
                continue
            fid = FleetId.parse(cid)
            if fid is not None and owner(mac, fid.shard.n) == fid.shard.k and \
                    (fid.started, cid) > (self.me.started, min(mine)):
                return cid
        return None

    # --- what the collector calls -----------------------------------------------------------
    async def authenticate(self) -> None:
        """Sign every account in; a rejected password names the account (with several)."""
        for c in self.clients:
            try:
                await c.authenticate()
            except InvalidCredentialsError as exc:
                if len(self.clients) == 1:
                    raise
                raise InvalidCredentialsError(
                    f"account {c.user_id}: {exc.message}; fix its password in NAVILINK_ACCOUNTS_FILE",
                    **exc.context) from None

    async def get_devices(self) -> list[Any]:
        """This shard's devices on every account (first account first)."""
        out: list[Any] = []
        for c in self.clients:
            out.extend(await c.get_devices())
        others = sum(c.filtered_out for c in self.clients)
        log.info("shard %s: %d device(s) here, %d elsewhere (other shards or handed over), %d account(s)",
                 self.shard, len(out), others, len(self.clients))
        return out

    async def connect(self) -> None:
        results = await asyncio.gather(*(c.connect() for c in self.clients), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    @property
    def connected(self) -> bool:
        return all(c.connected for c in self.clients)

    @property
    def client_ids(self) -> set[str]:
        return {cid for c in self.clients for cid in c.client_ids}

    def device(self, mac: str) -> Any:
        return next((d for c in self.clients if (d := c.device(mac)) is not None), None)

    @property
    def devices(self) -> list[Any]:
        return [d for c in self.clients for d in c.devices]

    def add_message_listener(self, cb: Listener) -> Callable[[], None]:
        def routed(topic: str, payload: bytes, received_at: Any) -> object:
            return self._route(cb, topic, payload, received_at)

        undo = [c.add_message_listener(routed) for c in self.clients]

        def detach() -> None:
            self.release_held(cb)
            for u in undo:
                u()

        return detach

    def add_connection_listener(self, cb: Callable[[str, str], None]) -> Callable[[], None]:
        undo = [c.add_connection_listener(cb) for c in self.clients]

        def detach() -> None:
            for u in undo:
                u()

        return detach

    # --- routing -----------------------------------------------------------------------------
    def _route(self, cb: Listener, topic: str, payload: bytes, received_at: Any) -> object:
        to = addressee(topic)
        if to is None:
            self._note_request(topic, payload)
            return cb(topic, payload, received_at)
        mac = mac_from_topic(topic)
        if mac is None or not is_mac(mac):
            return cb(topic, payload, received_at)
        if to in self.client_ids:
            if mac not in self.handed_over and self.newer_owner(mac) is None:
                return cb(topic, payload, received_at)  # nobody newer polls it: P holds while we poll
            self._hold(_Held(cb, topic, payload, received_at, mac, to, time.monotonic(), own=True))
            return None
        if FleetId.parse(to) is None:  # a phone app's: stored by the device's owner
            return None if mac in self.handed_over else cb(topic, payload, received_at)
        self._hold(_Held(cb, topic, payload, received_at, mac, to, time.monotonic(), own=False))
        return None

    def _note_request(self, topic: str, payload: bytes) -> None:
        """A request published on a device's topics: remember which fleet collector polls it."""
        if b'"request"' not in payload or b'"response"' in payload:
            return
        mac = mac_from_topic(topic)
        if mac is None or not is_mac(mac):
            return
        try:
            cid = orjson.loads(payload).get("clientID")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if isinstance(cid, str) and FleetId.parse(cid) is not None:
            if cid in self.client_ids:
                self._first_poll.setdefault(mac, time.monotonic())
            seen = self._requests.setdefault(mac, {})
            seen[cid] = time.monotonic()
            if len(seen) > 16:  # a handful of collectors at most: forget the longest quiet
                del seen[min(seen, key=seen.__getitem__)]

    def _hold(self, h: _Held) -> None:
        self.counts["held"] += 1
        key = id(h)
        self._held_items[key] = h
        with contextlib.suppress(RuntimeError):
            h.handle = asyncio.get_running_loop().call_later(self.hold_s, self._release, key)

    def _release(self, key: int, *, early: bool = False) -> None:
        h = self._held_items.pop(key, None)
        if h is None:
            return
        last = self._requests.get(h.mac, {}).get(h.to, float("-inf"))
        polled_again = last > h.arrived  # P
        if not h.own and h.arrived < self._first_poll.get(h.mac, float("inf")) and \
                last > h.arrived - 0.75 * self.hold_s:
            # it came before this collector first polled the device, to a collector polling it:
            # that one did not know of this one yet and stored the message at once
            polled_again = True
        if early and not h.own:
            # stopping before the addressee's next poll is due: it is alive (and keeps the
            # message) if it polled within the last interval and a half
            polled_again = polled_again or last > time.monotonic() - 0.75 * self.hold_s
        if polled_again != h.own:
            self.counts["left_to_owner"] += 1  # the collector the predicate names stores it
            return
        self.counts["stored_held"] += 1
        try:
            h.cb(h.topic, h.payload, h.received_at)
        except Exception:
            log.exception("storing a message held for %s failed", h.to)

    def release_held(self, cb: Listener | None = None) -> None:
        """Decide every held message now (at shutdown): store those whose addressee went quiet."""
        for key, h in list(self._held_items.items()):
            if cb is None or h.cb is cb:
                if h.handle is not None:
                    h.handle.cancel()
                self._release(key, early=True)
