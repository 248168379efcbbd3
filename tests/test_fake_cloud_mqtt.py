"""The fake cloud's MQTT side with a real awsiotsdk client: wss + SigV4 to amqtt on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from awscrt.exceptions import AwsCrtError

from navilink_etl.protocol import Command, Event, energy_response_topic
from navilink_etl.sim.clock import SimClock
from navilink_etl.sim.cloud import FakeCloud

from .conftest import load_capture
from .fake_cloud_probe import Probe, request, sign_in
from .fakes_device import FixtureDevice

MAC = "aabbccddeeff"
G = f"cmd/52/navilink-{MAC}"


@pytest.fixture
async def fc() -> AsyncIterator[FakeCloud]:
    async with FakeCloud([FixtureDevice(MAC)], push_interval_s=0.1) as cloud:
        yield cloud


@pytest.fixture
async def probe(fc: FakeCloud) -> AsyncIterator[Probe]:
    token = (await sign_in(fc))["data"]["token"]
    p = Probe(fc, token, "navien-client-1a2b3c4d")
    await p.connect()
    await p.subscribe(f"{G}/#")
    await p.subscribe("cmd/52/navien-client-1a2b3c4d/res/#")
    yield p
    await p.disconnect()


async def test_status_request_gets_the_captured_envelope_then_a_command_0_push(fc: FakeCloud, probe: Probe) -> None:
    topic, body = request(MAC, probe.client_id, Command.STATUS, "st")
    await probe.publish(topic, body)
    reply_topic, reply = await probe.next_reply()
    captured = load_capture("status_response_heatpump_running.json")
    assert reply_topic == body["responseTopic"]
    assert list(reply) == list(captured) == ["protocolVersion", "clientID", "sessionID", "requestTopic", "response"]
    assert list(reply["response"]) == list(captured["response"])
    assert reply["protocolVersion"] == 2 and reply["clientID"] == probe.client_id
    assert reply["sessionID"] == "1758919299363" and reply["requestTopic"] == topic
    assert reply["response"]["macAddress"] == MAC and reply["response"]["additionalValue"] == "5322"
    assert reply["response"]["status"] == captured["response"]["status"]  # command 16777219 included
    assert list(reply["response"]["status"]) == list(captured["response"]["status"])
    push_topic, push = await probe.next_reply()
    assert push_topic == body["responseTopic"]
    assert push["sessionID"] == "0" and push["response"]["status"]["command"] == Event.SNAPSHOT
    assert push["clientID"] == probe.client_id and push["requestTopic"] == topic


async def test_did_request_gets_the_feature(fc: FakeCloud, probe: Probe) -> None:
    topic, body = request(MAC, probe.client_id, Command.DEVICE_INFO, "st/did")
    await probe.publish(topic, body)
    _, reply = await probe.next_reply()
    assert reply["response"]["feature"] == fc.devices[0].feature()
    assert reply["response"]["macAddress"] == MAC


async def test_control_echo_then_event_push_and_goout_day_is_ignored(fc: FakeCloud, probe: Probe) -> None:
    await probe.publish(*request(MAC, probe.client_id, Command.STATUS, "st"))
    await probe.next_reply()
    await probe.next_reply()  # reply + command-0 push (sessionID "0")
    topic, body = request(MAC, probe.client_id, Command.GOOUT_DAY, "ctrl", mode="goout-day", param=[3], paramStr="")
    await probe.publish(topic, body)
    topic, body = request(MAC, probe.client_id, Command.DHW_MODE, "ctrl", session_id="42",
                          mode="dhw-mode", param=[5, 2], paramStr="")  # fmt: skip
    await probe.publish(topic, body)
    _, echo = await probe.next_reply()
    assert echo["sessionID"] == "42" and echo["requestTopic"] == f"{G}/ctrl"
    status = echo["response"]["status"]
    assert status["command"] == Command.DHW_MODE and status["dhwOperationSetting"] == 5
    assert status["vacationDaySetting"] == 2
    _, push = await probe.next_reply()
    assert push["response"]["status"]["command"] == Event.OPERATION_MODE_CHANGED
    assert push["sessionID"] == "1" and push["requestTopic"] == f"{G}/st"  # last *status* request's topic
    device = fc.devices[0]
    assert [c[0] for c in device.controls] == [Command.GOOUT_DAY, Command.DHW_MODE]  # type: ignore[attr-defined]
    assert probe.messages.empty()  # GOOUT_DAY produced no echo


async def test_energy_query_replies_on_the_nominated_topic(fc: FakeCloud, probe: Probe) -> None:
    rt = energy_response_topic(probe.client_id)
    topic, body = request(MAC, probe.client_id, Command.ENERGY_USAGE, "st/energy-usage-daily-query/rd",
                          response_topic=rt, month=[8, 9], year=2025)  # fmt: skip
    await probe.publish(topic, body)
    reply_topic, reply = await probe.next_reply()
    assert reply_topic == rt
    assert [u["month"] for u in reply["response"]["usage"]] == [8, 9]
    assert [len(u["data"]) for u in reply["response"]["usage"]] == [31, 30]
    assert reply["response"]["total"]["hpUsage"] == 6100


async def test_offline_dropped_malformed_and_latency_faults(fc: FakeCloud, probe: Probe) -> None:
    topic, body = request(MAC, probe.client_id, Command.DEVICE_INFO, "st/did")
    fc.set_offline(MAC, True)
    await probe.publish(topic, body)
    with pytest.raises(TimeoutError):
        await probe.next_reply(within=0.5)
    fc.set_offline(MAC, False)
    fc.drop_replies(1.0)
    await probe.publish(topic, body)
    with pytest.raises(TimeoutError):
        await probe.next_reply(within=0.5)
    fc.drop_replies(0.0)
    fc.malformed_next(MAC, 2)
    await probe.publish(*request(MAC, probe.client_id, Command.STATUS, "st"))
    _, first = await probe.next_reply()
    assert isinstance(first, bytes)  # truncated JSON
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(first)
    _, push = await probe.next_reply()  # pushes stay well-formed
    assert push["sessionID"] == "0"
    await probe.publish(*request(MAC, probe.client_id, Command.STATUS, "st"))
    _, second = await probe.next_reply()
    assert isinstance(second["response"]["status"]["dhwTemperature"], str)
    await probe.next_reply()
    fc.set_latency(0.4)
    t0 = time.monotonic()
    await probe.publish(topic, body)
    _, ok = await probe.next_reply()
    assert "feature" in ok["response"] and time.monotonic() - t0 >= 0.4


async def test_upgrade_with_unknown_key_or_bad_signature_is_refused(fc: FakeCloud) -> None:
    token = (await sign_in(fc))["data"]["token"]
    t0 = time.monotonic()
    with pytest.raises(AwsCrtError, match="WEBSOCKET_UPGRADE"):
        await Probe(fc, token, "c-unknown", akid="ASIAUNKNOWNUNKNOWN00").connect()
    bad_secret = dict(token, secretKey="x" * 40)
    with pytest.raises(AwsCrtError, match="WEBSOCKET_UPGRADE"):
        await Probe(fc, bad_secret, "c-badsig").connect()
    assert time.monotonic() - t0 < 5
    assert fc.broker.refused_upgrades == 2 and fc.broker.accepted_upgrades == 0


async def test_same_client_id_takes_over_the_older_connection(fc: FakeCloud) -> None:
    token = (await sign_in(fc))["data"]["token"]
    first = Probe(fc, token, "shared-id")
    await first.connect()
    second = Probe(fc, token, "shared-id")
    await second.connect()
    await asyncio.wait_for(first.interrupted.wait(), 5)
    assert fc.broker.connected_client_ids() == ["shared-id"]
    await second.subscribe(f"{G}/#")
    await second.publish(*request(MAC, "shared-id", Command.DEVICE_INFO, "st/did"))
    _, reply = await second.next_reply()
    assert "feature" in reply["response"]
    # the SDK brings the first back, which kicks the second: the documented endless flap
    await asyncio.wait_for(second.interrupted.wait(), 5)
    await asyncio.gather(first.disconnect(), second.disconnect())


async def test_persistent_session_survives_a_takeover(fc: FakeCloud) -> None:
    token = (await sign_in(fc))["data"]["token"]
    first = Probe(fc, token, "ha-like", clean_session=False)
    assert (await asyncio.wrap_future(first.conn.connect()))["session_present"] is False
    await first.subscribe(f"{G}/#")
    second = Probe(fc, token, "ha-like", clean_session=False)
    second.conn.on_message(second._on_message)  # no SUBSCRIBE of its own: relies on the session
    assert (await asyncio.wrap_future(second.conn.connect()))["session_present"] is True
    await asyncio.wait_for(first.interrupted.wait(), 5)
    stop_first = asyncio.wrap_future(first.conn.disconnect())
    # the broker kept the subscription: the device's reply reaches the new connection
    await second.publish(*request(MAC, "ha-like", Command.DEVICE_INFO, "st/did"))
    _, reply = await second.next_reply()
    assert "feature" in reply["response"]
    await asyncio.gather(stop_first, second.disconnect())


async def test_pushes_can_be_mirrored_to_the_gateway_res_topic() -> None:
    device = FixtureDevice(MAC)
    async with FakeCloud([device], push_interval_s=0.05, mirror_pushes=True) as fc:
        token = (await sign_in(fc))["data"]["token"]
        p = Probe(fc, token, "mirror-client")
        await p.connect()
        await p.subscribe(f"{G}/#")
        await p.publish(*request(MAC, p.client_id, Command.STATUS, "st"))
        await p.next_reply()  # the reply
        device.queue_push(Event.RELAY_CHANGED)
        got = {}
        for _ in range(3):  # command-0 push (+ mirror) then the relay push (+ mirror)
            topic, msg = await p.next_reply()
            got.setdefault(topic, []).append(msg["response"]["status"]["command"])
        assert got[f"{G}/mirror-client/res"][:2] == [Event.SNAPSHOT, Event.RELAY_CHANGED]
        assert got[f"{G}/res/st"][0] == Event.SNAPSHOT
        await p.disconnect()


async def test_credential_expiry_drops_the_connection_and_refuses_reconnects(fc: FakeCloud, probe: Probe) -> None:
    assert await fc.expire_credentials() == 1
    await asyncio.wait_for(probe.interrupted.wait(), 5)
    await _eventually(lambda: fc.broker.refused_upgrades > 0)  # the SDK retries and is refused
    assert fc.broker.refused_upgrades >= 1 and fc.broker.connected_client_ids() == []


async def test_force_disconnect_and_broker_down_then_the_sdk_resumes(fc: FakeCloud, probe: Probe) -> None:
    assert await fc.force_disconnect() == 1
    await asyncio.wait_for(probe.interrupted.wait(), 5)
    await _wait_connected(fc, probe.client_id)
    probe.interrupted.clear()
    port = fc.iot_port
    await fc.broker_down(0.5)
    await asyncio.wait_for(probe.interrupted.wait(), 5)
    assert fc.broker.connected_client_ids() == []
    await fc.broker.wait_up()
    await _wait_connected(fc, probe.client_id)
    assert fc.iot_port == port


async def _wait_connected(fc: FakeCloud, client_id: str) -> None:
    await _eventually(lambda: client_id in fc.broker.connected_client_ids())


async def _eventually(condition: Callable[[], bool], within: float = 8.0) -> None:
    for _ in range(int(within / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_sim_clock_runs_at_speed() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = SimClock(start, speed=600)
    await asyncio.sleep(0.1)
    elapsed = clock.now() - start
    assert timedelta(seconds=55) <= elapsed <= timedelta(seconds=120)
    clock.set_speed(1)
    before = clock.now()
    assert clock.now() - before < timedelta(seconds=1)
    with pytest.raises(ValueError):
        SimClock(datetime(2026, 1, 1), 1)  # naive on purpose


async def test_connection_age_limit_drops_clients_like_the_24h_cut(fc: FakeCloud, probe: Probe) -> None:
    fc.set_connection_limits(max_age_s=0.3)
    await asyncio.wait_for(probe.interrupted.wait(), 5)
    fc.set_connection_limits(None)
    await _wait_connected(fc, probe.client_id)
