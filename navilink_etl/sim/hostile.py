"""The hostile fake-cloud profile: bad device-list entries, TOU plans, energy replies and MQTT messages
mixed with the good devices' traffic, all in the NaviLink wire format, each written to a ledger.

``FakeCloud(hostile=True)`` (or ``navilink-etl sim serve --hostile``) turns it on; ``fc.hostile.ledger``
says what was sent, so a test can check that every good sample was stored once and every bad one
was skipped, rejected or quarantined.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..protocol import DEVICE_TYPE, PROTOCOL_VERSION

TRAVERSAL_MAC = "aa/../../../../escaped_dir"
DEFAULT_MAC = "default"
WRONG_TYPES_MAC = "04786332feed"  # a valid MAC on an entry whose other fields have the wrong types
COUNTER_MAX = 2**64 - 1  # an "unknown" marker of all ones
ABSURD_YEAR = 10**18
BIG_PAYLOAD_BYTES = 10 * 1024 * 1024
REDELIVERY_DELAY_S = 5.0

# what the client/collector is expected to do with each kind
SKIP = "skip"  # left out of the device list (reported)
REJECT = "reject"  # the request fails with PayloadError; nothing saved, retried later
QUARANTINE = "quarantine"  # stored under quarantine/ with a reason
DEDUP = "dedup"  # a redelivery: stored once only

Publish = Callable[[str, bytes], Awaitable[None]]


@dataclass
class Toggles:
    """Which hostile items the profile sends (all on by default)."""

    list_entries: bool = True  # path-traversal, "default", case-only duplicate, wrong types
    tou_plan: bool = True  # a broken TOU plan for the first device
    energy_year: bool = True  # an absurd year in the first device's first energy reply
    energy_counter: bool = True  # then a 2^64-1 counter in its next energy reply
    mismatched_mac: bool = True  # body macAddress differs from the topic's
    traversal_body_mac: bool = True  # body macAddress "aa/../../../../escaped_dir" and "default"
    counter_max: bool = True  # a status field of 2^64-1
    non_finite: bool = True  # NaN and 1e999 in a status field
    big_payload: bool = True  # a 10 MB status
    redelivery: bool = True  # a good push sent again a few seconds late


@dataclass(frozen=True)
class Item:
    """One hostile thing sent: where, what it should lead to, and how to recognise it."""

    kind: str
    where: str  # device_list, tou, energy or mqtt
    expect: str  # SKIP, REJECT, QUARANTINE or DEDUP
    mac: str | None = None  # the MAC the item names (as sent)
    topic: str | None = None
    needle: str | None = None  # a substring of the payload found in its quarantined raw text
    size: int = 0
    sha256: str | None = None
    sent_at: float = field(default_factory=time.time)


@dataclass
class Ledger:
    """What the hostile profile sent, and every good status message (per device MAC)."""

    items: list[Item] = field(default_factory=list)
    good: dict[str, list[tuple[float, bytes]]] = field(default_factory=dict)

    def add(self, item: Item) -> None:
        self.items.append(item)

    def by_expect(self, expect: str) -> list[Item]:
        return [i for i in self.items if i.expect == expect]

    def kinds(self) -> set[str]:
        return {i.kind for i in self.items}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class HostileProfile:
    """Builds the hostile items; ``FakeCloud`` calls its hooks from REST, the agents and the ticker."""

    def __init__(self, toggles: Toggles | None = None, *, warmup_ticks: int = 3) -> None:
        self.toggles = toggles or Toggles()
        self.ledger = Ledger()
        self.warmup_ticks = warmup_ticks
        self._ticks = 0
        self._queue: list[Callable[[], Awaitable[None]]] = []
        self._planned = False
        self._energy_faults = [k for k, on in (("absurd_year", self.toggles.energy_year),
                                               ("counter_max_energy", self.toggles.energy_counter)) if on]

    # -- REST

    def device_list_extras(self, good: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Entries appended to the (last page of the) device list."""
        if not self.toggles.list_entries or not good:
            return []
        first = good[0]["deviceInfo"]
        base = {"homeSeq": 29999, "additionalValue": "9999", "deviceType": DEVICE_TYPE,
                "deviceName": "NWP500", "connected": 2}  # fmt: skip
        extras = [
            ("traversal_mac_list_entry", dict(base, macAddress=TRAVERSAL_MAC)),
            ("default_mac_list_entry", dict(base, macAddress=DEFAULT_MAC)),
            ("case_duplicate_list_entry", dict(first, macAddress=str(first["macAddress"]).upper())),
            ("wrong_types_list_entry", dict(base, macAddress=WRONG_TYPES_MAC, deviceType="fifty-two",
                                            homeSeq=[1], deviceName={"x": 1})),
        ]
        out = []
        for kind, info in extras:
            if not any(i.kind == kind for i in self.ledger.items):
                self.ledger.add(Item(kind, "device_list", SKIP, mac=str(info["macAddress"])))
            out.append({"deviceInfo": info, "location": {"state": "CA", "city": "Nowhere"}})
        return out

    def tou_reply(self, mac: str, first_mac: str, good: dict[str, Any]) -> dict[str, Any]:
        """A broken plan for the first device: a season named in words, an hour of 99."""
        if not self.toggles.tou_plan or mac != first_mac:
            return good
        self.ledger.add(Item("broken_tou_plan", "tou", REJECT, mac=mac))
        info = dict(good["touInfo"])
        info["schedule"] = [{"season": "summer", "interval": [{"week": 124, "startHour": 99, "endHour": 5,
                                                                "priceMin": -1, "decimalPoint": 5}]}]
        return dict(good, touInfo=info)

    # -- energy replies (first device)

    def energy_reply(self, mac: str, body: dict[str, Any]) -> dict[str, Any]:
        if not self._energy_faults or not isinstance(body.get("usage"), list) or not body["usage"]:
            return body
        kind = self._energy_faults.pop(0)
        usage = [dict(m) for m in body["usage"]]
        if kind == "absurd_year":
            usage[0]["year"] = ABSURD_YEAR
        else:
            days = [dict(d) for d in usage[0]["data"]]
            days[0]["hpUsage"] = COUNTER_MAX
            usage[0]["data"] = days
        self.ledger.add(Item(kind, "energy", REJECT, mac=mac))
        return dict(body, usage=usage)

    # -- MQTT

    def record_good(self, topic: str, payload: bytes) -> None:
        """Every status reply/push a good device publishes (what the store should hold once)."""
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        resp = msg.get("response") if isinstance(msg, dict) else None
        if isinstance(resp, dict) and isinstance(resp.get("status"), dict):
            self.ledger.good.setdefault(str(resp.get("macAddress")), []).append((time.time(), payload))

    async def tick(self, targets: list[tuple[str, str, str, str]], publish: Publish) -> None:
        """Send the next hostile message once the good devices have been asked (one per tick).

        ``targets``: (mac, push topic, clientID, requestTopic) of each good device with a requester.
        """
        self._ticks += 1
        if not targets or self._ticks <= self.warmup_ticks:
            return
        if not self._planned:
            self._plan(targets, publish)
            self._planned = True
        if self._queue:
            await self._queue.pop(0)()

    def _plan(self, targets: list[tuple[str, str, str, str]], publish: Publish) -> None:
        mac, topic, client_id, req_topic = targets[0]
        other = targets[1][0] if len(targets) > 1 else "0478633200ff"
        t = self.toggles

        def status_env(body_mac: str, status: dict[str, Any]) -> dict[str, Any]:
            return {"protocolVersion": PROTOCOL_VERSION, "clientID": client_id, "sessionID": "7",
                    "requestTopic": req_topic,
                    "response": {"deviceType": DEVICE_TYPE, "macAddress": body_mac, "additionalValue": "5322",
                                 "status": status}}  # fmt: skip

        def good_status() -> dict[str, Any]:
            """The device's latest good status, so only the planted fault differs."""
            sent = self.ledger.good.get(mac)
            if not sent:
                return {"command": 67108883, "dhwTemperature": 120}
            return dict(orjson.loads(sent[-1][1])["response"]["status"])

        def send(kind: str, expect: str, make: Callable[[], bytes], needle: str | None) -> None:
            async def go() -> None:
                data = make()
                await publish(topic, data)
                self.ledger.add(Item(kind, "mqtt", expect, mac=mac, topic=topic, needle=needle,
                                     size=len(data), sha256=_sha(data)))

            self._queue.append(go)

        if t.mismatched_mac:
            send("mismatched_body_mac", QUARANTINE,
                 lambda: orjson.dumps(status_env(other, good_status())), other)
        if t.traversal_body_mac:
            send("traversal_body_mac", QUARANTINE,
                 lambda: orjson.dumps(status_env(TRAVERSAL_MAC, good_status())), "escaped_dir")
            send("default_body_mac", QUARANTINE,
                 lambda: orjson.dumps(status_env(DEFAULT_MAC, good_status())), '"default"')
        if t.counter_max:
            send("counter_max_status", QUARANTINE,
                 lambda: orjson.dumps(status_env(mac, dict(good_status(), cumulatedOpTimeEvaFan=COUNTER_MAX,
                                                           dhwChargePer=COUNTER_MAX))),
                 str(COUNTER_MAX))
        if t.non_finite:
            send("nan_status", QUARANTINE,
                 lambda: orjson.dumps(status_env(mac, dict(good_status(), dhwTemperature=0)))
                 .replace(b'"dhwTemperature":0', b'"dhwTemperature":NaN'), "NaN")
            send("inf_status", QUARANTINE,
                 lambda: orjson.dumps(status_env(mac, dict(good_status(), dhwTemperature=0)))
                 .replace(b'"dhwTemperature":0', b'"dhwTemperature":1e999'), "1e999")
        if t.big_payload:
            def big() -> bytes:
                head = orjson.dumps(status_env(mac, dict(good_status(), hostilePadding="")))
                return head.replace(b'"hostilePadding":""', b'"hostilePadding":"' + b"x" * BIG_PAYLOAD_BYTES + b'"')

            send("big_payload", QUARANTINE, big, None)
        if t.redelivery:
            async def redeliver() -> None:
                old = [p for at, p in self.ledger.good.get(mac) or [] if at <= time.time() - REDELIVERY_DELAY_S]
                if not old:
                    self._queue.append(redeliver)  # nothing old enough yet: try again next tick
                    return
                payload = old[-1]
                await publish(topic, payload)  # the same bytes again, seconds after the original
                self.ledger.add(Item("redelivered_push", "mqtt", DEDUP, mac=mac, topic=topic,
                                     size=len(payload), sha256=_sha(payload)))

            self._queue.append(redeliver)

    @property
    def done(self) -> bool:
        """Every planned MQTT item is sent and every energy fault answered (TOU depends on the client)."""
        return self._planned and not self._queue and not self._energy_faults
