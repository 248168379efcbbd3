"""The collector's ingest path: one parse, identity checks, redelivery dedup, reply matching."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from navilink_etl.cloud import mqtt as mqtt_mod
from navilink_etl.cloud.mqtt import MqttSession, _Pending
from navilink_etl.collect import ingest as ingest_mod
from navilink_etl.collect.ingest import Dedup, Ingest
from navilink_etl.collect.stats import CollectorStats
from navilink_etl.collect.store import Store, scan_dataset
from navilink_etl.config import NaviLinkConfig
from navilink_etl.protocol import Command, response_topic

from .conftest import load_capture

MAC, OTHER = "aabbccddeeff", "112233445566"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def status_msg(mac: str = MAC, *, session: str = "1767614400000", temp: int | None = None,
               body_mac: str | None = None, command: int = Command.STATUS) -> bytes:
    status = dict(load_capture("status_response_heatpump_running.json")["response"]["status"])
    status["command"] = command
    if temp is not None:
        status["dhwTemperature"] = temp
    return orjson.dumps({"protocolVersion": 2, "clientID": "navilink-etl-test", "sessionID": session,
                         "requestTopic": f"cmd/52/navilink-{mac}/st",
                         "response": {"deviceType": 52, "macAddress": body_mac or mac,
                                      "additionalValue": "5322", "status": status}})


def energy_msg(*, mac: str | None, session: str | None, year: int = 2026, months: tuple[int, ...] = (1,)) -> bytes:
    response: dict[str, Any] = {"deviceType": 52, "typeOfUsage": 1,
                                "usage": [{"year": year, "month": m, "data": [
                                    {"hpUsage": 1000, "heUsage": 0, "hpTime": 3, "heTime": 0}]} for m in months]}
    if mac is not None:
        response["macAddress"] = mac
    msg: dict[str, Any] = {"protocolVersion": 2, "clientID": "navilink-etl-test", "response": response}
    if session is not None:
        msg["sessionID"] = session
    return orjson.dumps(msg)


@pytest.fixture
async def ingest(tmp_path: Path) -> AsyncIterator[Ingest]:
    store = Store(tmp_path / "data")
    ing = Ingest(store, CollectorStats(), source="test", stamp=lambda t: t, now=lambda: datetime.now(UTC))
    ing.start()
    try:
        yield ing
    finally:
        await ing.stop()
        store.close()


async def stored(ing: Ingest) -> dict[str, Any]:
    await ing.drain()
    await asyncio.to_thread(ing.store.flush)
    data = ing.store.data_dir
    return {ds: scan_dataset(data, ds).collect() for ds in ("status", "quarantine", "events")}


async def test_a_redelivery_is_stored_once_however_late(ingest: Ingest) -> None:
    topic = response_topic(MAC, "navilink-etl-test")
    msg = status_msg()
    ingest.on_message(topic, msg, T0)
    ingest.on_message(topic, msg, T0 + timedelta(seconds=30))  # QoS 1 redelivery, 30 s late
    ingest.on_message(topic, status_msg(session="1767614460000"), T0 + timedelta(seconds=60))  # new poll
    ingest.on_message(topic, status_msg(temp=99), T0 + timedelta(seconds=61))  # new content
    out = await stored(ingest)
    assert out["status"].height == 3 and ingest.stats.duplicates == 1
    assert ingest.stats.samples[MAC] == 3


def test_dedup_memory_is_bounded_per_device() -> None:
    d = Dedup(keep=4, devices=2)
    assert not d.seen("a", (1,)) and d.seen("a", (1,))
    for i in range(2, 10):
        d.seen("a", (i,))
    assert len(d) == 4 and not d.seen("a", (1,))  # forgotten after ``keep`` newer keys
    d.seen("b", (1,))
    d.seen("c", (1,))
    assert len(d._seen) == 2


async def test_identity_is_checked_at_entry(ingest: Ingest) -> None:
    good = response_topic(MAC, "c")
    ingest.on_message(good, status_msg(body_mac=OTHER), T0)  # body names another device
    ingest.on_message("cmd/52/navilink-aa/../../escaped/c/res", status_msg(), T0)
    ingest.on_message("cmd/52/navilink-AABBCCDDEEFF/c/res", status_msg(session="2"), T0)  # not canonical
    ingest.on_message(good, b'{"truncated', T0)
    ingest.on_message(good, b'{"pad": "' + b"x" * 10_000_000 + b'"}', T0)  # 10 MB
    ingest.on_message(good, status_msg(body_mac=MAC.upper(), session="3"), T0)  # same MAC, other case: ok
    out = await stored(ingest)
    reasons = out["quarantine"].get_column("reason").to_list()
    assert out["status"].height == 1 and len(reasons) == 5
    assert any("differs from the topic's" in r for r in reasons)
    assert sum("names no valid device MAC" in r for r in reasons) == 2
    assert any(r.startswith("not JSON") for r in reasons)
    assert any("10,000,011 bytes exceeds" in r for r in reasons)
    assert out["quarantine"].get_column("raw").str.len_bytes().max() <= 65_536
    assert set(out["quarantine"].get_column("device").drop_nulls()) <= {MAC}
    data = ingest.store.data_dir
    assert not any(p.name.startswith("escaped") for p in data.parent.rglob("*"))
    assert "malformed_message" in out["events"].get_column("kind").to_list()


async def test_a_status_reply_is_parsed_once(tmp_path: Path, ingest: Ingest, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"loads": 0, "mqtt_parse": 0, "status_object": 0}
    real_loads, real_obj = orjson.loads, ingest_mod.parse_status_object

    def loads(b: Any) -> Any:
        calls["loads"] += 1
        return real_loads(b)

    def status_object(*a: Any) -> Any:
        calls["status_object"] += 1
        return real_obj(*a)

    def mqtt_parse(*a: Any) -> Any:
        calls["mqtt_parse"] += 1
        raise AssertionError("the MQTT session parsed a message the ingest had parsed")

    monkeypatch.setattr(ingest_mod.orjson, "loads", loads)
    monkeypatch.setattr(ingest_mod, "parse_status_object", status_object)
    monkeypatch.setattr(mqtt_mod, "parse_message", mqtt_parse)
    session = session_with_listener(tmp_path, ingest)
    fut = pending(session, "42", MAC, "status")
    session._dispatch(response_topic(MAC, "c"), status_msg(session="42"), T0)
    assert fut.done() and fut.result()[0].session_id == "42"
    assert calls == {"loads": 1, "mqtt_parse": 0, "status_object": 1}
    assert ingest.stats.samples[MAC] == 1


def session_with_listener(tmp_path: Path, ingest: Ingest | None = None) -> MqttSession:
    cfg = NaviLinkConfig(data_dir=tmp_path, timezone="UTC")
    session = MqttSession(cfg, auth=None, client_id="navilink-etl-test")  # type: ignore[arg-type]
    if ingest is not None:
        session.add_message_listener(ingest.on_message)
    return session


def pending(session: MqttSession, sid: str, mac: str, kind: str,
            months: tuple[int, tuple[int, ...]] | None = None) -> asyncio.Future[Any]:
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    session._pending[sid] = _Pending(fut, mac, kind, months)
    return fut


async def test_energy_replies_are_matched_by_mac_and_session(tmp_path: Path) -> None:
    s = session_with_listener(tmp_path)
    jan = (2026, (1,))
    topic = "cmd/52/navilink-etl-test/res/energy-usage-daily-query/rd"

    a, b = pending(s, "100", MAC, "energy", jan), pending(s, "101", OTHER, "energy", jan)
    s._dispatch(topic, energy_msg(mac=OTHER, session=None), T0)  # B's reply, no session echo
    assert b.done() and not a.done()
    s._pending.clear()

    a, b = pending(s, "100", MAC, "energy", jan), pending(s, "101", OTHER, "energy", jan)
    s._dispatch(topic, energy_msg(mac=None, session=None), T0)  # nothing says whose: ambiguous
    assert not a.done() and not b.done()
    s._dispatch(topic, energy_msg(mac=None, session="101"), T0)  # the session says B
    assert b.done() and not a.done()
    s._dispatch(topic, energy_msg(mac=OTHER, session="100"), T0)  # A's session, B's MAC: neither
    assert not a.done()
    s._pending.clear()

    a, b = pending(s, "100", MAC, "energy", jan), pending(s, "101", OTHER, "energy", (2025, (12,)))
    s._dispatch(topic, energy_msg(mac=None, session=None, year=2025, months=(12,)), T0)  # only B asked
    assert b.done() and not a.done()
    assert b.result()[0].response["usage"][0]["year"] == 2025


async def test_concurrent_drains_write_every_row_once(ingest: Ingest) -> None:
    topic = response_topic(MAC, "c")

    def arrive(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            ingest.on_message(topic, status_msg(session=str(i)), T0 + timedelta(seconds=i))

    arrive(0, 200)
    first = asyncio.create_task(ingest.drain())
    await asyncio.sleep(0)
    arrive(200, 300)  # while the first drain is writing
    second = asyncio.create_task(ingest.drain())  # e.g. the flush job
    await asyncio.sleep(0)
    arrive(300, 400)
    assert all(await asyncio.gather(first, second))
    out = await stored(ingest)
    assert out["status"].height == 400 and ingest.buffered == 0


async def test_a_late_broker_redelivery_is_stored_once(tmp_path: Path) -> None:
    from navilink_etl.collect.run import run_collection
    from navilink_etl.sim.cloud import FakeCloud

    from .test_collect import fake_config

    data = tmp_path / "data"
    seen: list[tuple[str, bytes]] = []
    async with FakeCloud(n_devices=1, speed=60.0, seed=8) as fc:  # 300 s interval: a poll every 5 s
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run_collection(
            fake_config(fc, data), interval=300, duration_min=None, clock=fc.clock, mode="embedded",
            status_line=False, stop=stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 20)
        mac = fc.devices[0].mac
        real = fc.broker.publish

        async def record(topic: str, payload: bytes) -> None:
            if b'"status"' in payload:
                seen.append((topic, payload))
            await real(topic, payload)

        for agent in fc.agents.values():
            agent._publish = record
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(3.0)  # well past the old 2 s window
        topic, payload = seen[0]
        await real(topic, payload)  # the broker delivers the same message again
        await asyncio.sleep(1.0)
        stop.set()
        stats = await asyncio.wait_for(task, 30)
    assert stats.duplicates >= 1
    st = scan_dataset(data, "status").filter(pl.col("device") == mac).collect()
    assert st.height == st.unique(subset=["content_hash", "session_id", "client_id"]).height
