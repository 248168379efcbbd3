"""The per-device MQTT agent: answers requests on a device's topics and publishes its pushes.

It is the wire half of a simulated NWP500 (docs/protocol.md 3.6-3.8, 6); all state lives in the
``DeviceModel`` it drives. Replies go verbatim to the request's ``responseTopic``; pushes go to
the most recent requester's with a "0".."9" sessionID counter.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..protocol import (
    DEVICE_TYPE,
    PROTOCOL_VERSION,
    Command,
    Event,
    control_topic,
    did_topic,
    energy_topic,
    gateway,
    reservation_read_topic,
    status_topic,
)
from .clock import SimClock
from .model import DeviceModel

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]
Latency = float | tuple[float, float]


class DeviceAgent:
    """Speaks MQTT for one ``DeviceModel``. Call ``handle`` for each publish on its topics, ``tick`` ~1/s."""

    def __init__(
        self,
        device: DeviceModel,
        clock: SimClock,
        publish: Publish,
        *,
        latency_s: Latency = 0.0,
        rng: random.Random | None = None,
        mirror_pushes: bool = False,
    ) -> None:
        self.device = device
        self.clock = clock
        self._publish = publish
        self.latency_s = latency_s
        self.rng = rng or random.Random(0)
        self.mirror_pushes = mirror_pushes
        # faults
        self.offline = False
        self.drop_probability = 0.0
        self.malformed_left = 0  # the next N replies: truncated JSON, then a non-integer field, ...
        self.energy_hook: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None  # hostile profile
        self._malformed_seq = 0
        # correlation state for pushes
        self._last_client_id: str | None = None
        self._last_request_topic = status_topic(device.mac)
        self._push_target: str | None = None
        self._push_counter = 0
        self._tasks: set[asyncio.Task[None]] = set()
        mac = device.mac
        self._routes: dict[str, Callable[[dict[str, Any], str], Awaitable[None]]] = {
            status_topic(mac): self._on_status,
            did_topic(mac): self._on_did,
            control_topic(mac): self._on_control,
            energy_topic(mac): self._on_energy,
            reservation_read_topic(mac): self._on_reservation,
        }
        self.replies_sent = 0
        self.pushes_sent = 0

    def push_target(self) -> tuple[str, str, str] | None:
        """(push topic, clientID, requestTopic) once someone has asked, else None."""
        if self._push_target is None:
            return None
        return self._push_target, self._last_client_id or "", self._last_request_topic

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics this agent subscribes to."""
        return tuple(self._routes)

    # -- inbound

    def on_message(self, topic: str, payload: bytes) -> None:
        """Broker hook (sync): start handling a publish if it is for this device."""
        if topic not in self._routes or self.offline:
            return
        task = asyncio.get_running_loop().create_task(self.handle(topic, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, topic: str, payload: bytes) -> None:
        route = self._routes.get(topic)
        if route is None or self.offline:
            return
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return  # not a request (e.g. a message another client sent); real devices ignore junk
        if not isinstance(msg, dict) or not isinstance(msg.get("request"), dict):
            return  # our own replies or other clients' traffic on the same topic
        if not isinstance(msg.get("responseTopic"), str):
            return
        await self._sleep_latency()
        if self.offline:
            return
        self.device.advance_to(self.clock.now())
        await route(msg, topic)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- routes

    def _remember(self, msg: dict[str, Any], topic: str, *, status_request: bool = False) -> None:
        self._last_client_id = str(msg.get("clientID", ""))
        self._push_target = msg["responseTopic"]
        if status_request:
            # pushes keep the last *status* requestTopic even after a control [capture]
            self._last_request_topic = str(msg.get("requestTopic", topic))

    async def _on_status(self, msg: dict[str, Any], topic: str) -> None:
        self._remember(msg, topic, status_request=True)
        await self._reply(msg, topic, {"status": self.device.snapshot(int(Command.STATUS))})
        await self._push(self.device.snapshot(int(Event.SNAPSHOT)))

    async def _on_did(self, msg: dict[str, Any], topic: str) -> None:
        self._remember(msg, topic)
        await self._reply(msg, topic, {"feature": self.device.feature()})

    async def _on_control(self, msg: dict[str, Any], topic: str) -> None:
        req = msg["request"]
        command = req.get("command")
        param = req.get("param", [])
        if not isinstance(command, int) or not isinstance(param, list):
            return
        self._remember(msg, topic)
        mode = req.get("mode")
        applied = self.device.apply_control(command, mode if isinstance(mode, str) else None, param)
        if not applied:
            return  # e.g. GOOUT_DAY: accepted silently, no echo
        await self._reply(msg, topic, {"status": self.device.snapshot(command)})

    async def _on_energy(self, msg: dict[str, Any], topic: str) -> None:
        req = msg["request"]
        year, months = req.get("year"), req.get("month")
        if not isinstance(year, int) or not isinstance(months, list) or not all(isinstance(m, int) for m in months):
            return
        body = self.device.energy_usage(year, months)
        if self.energy_hook is not None:
            body = self.energy_hook(self.device.mac, body)
        await self._reply(msg, topic, body)

    async def _on_reservation(self, msg: dict[str, Any], topic: str) -> None:
        read = getattr(self.device, "reservation", None)
        body = read() if callable(read) else {"reservationUse": 1, "reservation": ""}
        await self._reply(msg, topic, body)

    # -- outbound

    def _envelope(self, client_id: str, session_id: str, request_topic: str, body: dict[str, Any]) -> dict[str, Any]:
        d = self.device
        response = {"deviceType": DEVICE_TYPE, "macAddress": d.mac, "additionalValue": d.additional_value}
        response.update(body)
        return {"protocolVersion": PROTOCOL_VERSION, "clientID": client_id, "sessionID": session_id,
                "requestTopic": request_topic, "response": response}  # fmt: skip

    async def _reply(self, msg: dict[str, Any], topic: str, body: dict[str, Any]) -> None:
        if self.drop_probability > 0 and self.rng.random() < self.drop_probability:
            return
        env = self._envelope(str(msg.get("clientID", "")), str(msg.get("sessionID", "")),
                             str(msg.get("requestTopic", topic)), body)  # fmt: skip
        await self._publish(msg["responseTopic"], self._encode(env))
        self.replies_sent += 1

    def _encode(self, env: dict[str, Any]) -> bytes:
        data = orjson.dumps(env)
        if self.malformed_left <= 0:
            return data
        self.malformed_left -= 1
        self._malformed_seq += 1
        status = env["response"].get("status")
        if self._malformed_seq % 2 == 0 and isinstance(status, dict) and "dhwTemperature" in status:
            status = dict(status, dhwTemperature=f"{status['dhwTemperature'] / 2:.1f}")  # a non-integer field
            return orjson.dumps(dict(env, response=dict(env["response"], status=status)))
        return data[: max(1, len(data) // 2)]  # truncated JSON

    async def _push(self, status: dict[str, int]) -> None:
        if self._push_target is None or self.offline:
            return  # nobody has asked yet: the device has nowhere to send
        session_id = str(self._push_counter)
        self._push_counter = (self._push_counter + 1) % 10
        env = self._envelope(self._last_client_id or "", session_id, self._last_request_topic, {"status": status})
        data = orjson.dumps(env)
        await self._publish(self._push_target, data)
        if self.mirror_pushes:
            await self._publish(f"{gateway(self.device.mac)}/res/st", data)
        self.pushes_sent += 1

    async def tick(self) -> None:
        """Advance the plant to now and publish its pushes (drained even when offline or unheard)."""
        self.device.advance_to(self.clock.now())
        for push in self.device.drain_pushes():
            await self._push(push.status)

    async def _sleep_latency(self) -> None:
        lat = self.latency_s
        delay = self.rng.uniform(*lat) if isinstance(lat, tuple) else float(lat)
        if delay > 0:
            await asyncio.sleep(delay)
