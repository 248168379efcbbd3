"""Collector jobs: one bad device never stops the others, energy failures are retried, the warehouse
refresh runs beside the polls (never two at once), and shutdown cancels nothing mid-flight."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from navilink_etl.collect.run import run_collection
from navilink_etl.collect.scheduler import Collector, SimTime
from navilink_etl.collect.stats import CollectorStats
from navilink_etl.collect.store import Store, scan_dataset
from navilink_etl.errors import PayloadError
from navilink_etl.sim.cloud import FakeCloud

from .test_collect import fake_config


class Dev:
    def __init__(self, mac: Any, *, energy_error: Exception | None = None) -> None:
        self.mac, self.name, self.online = mac, "NWP500", True
        self.energy_error = energy_error

    async def get_energy_usage(self, year: int, months: list[int], timeout: float) -> list[Any]:  # noqa: ASYNC109
        raise self.energy_error or RuntimeError("unexpected")


class BrokenOnline(Dev):
    @property  # type: ignore[override]
    def online(self) -> bool:
        raise TypeError("connected is a list")

    @online.setter
    def online(self, value: bool) -> None:
        pass


class Client:
    connected = True

    def __init__(self, devices: list[Any]) -> None:
        self.devices = devices

    async def get_devices(self) -> list[Any]:
        return self.devices


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    store = Store(tmp_path / "data")
    c = Collector(Client([]), store, CollectorStats(), interval_s=300, time=SimTime(), source="test",
                  request_timeout=1.0)
    c.ingest.start()
    c.scheduler.start()
    c._jobs_ready = True
    try:
        yield c
    finally:
        c._stopping = True
        c.scheduler.shutdown(wait=False)
        await c.ingest.stop()
        store.flush()
        store.close()


def kinds(c: Collector) -> list[str]:
    c.store.flush()
    return scan_dataset(c.store.data_dir, "events").collect().get_column("kind").to_list()


async def test_bad_device_entries_are_skipped_and_the_others_polled(collector: Collector) -> None:
    good, unlucky = Dev("aabbccddeeff"), Dev("112233445566")
    collector.client.devices = [Dev("aa/../../x"), good, BrokenOnline("a1b2c3d4e5f6"), Dev(None), unlucky]
    real = collector.events.write

    def write(kind: str, **kw: Any) -> None:  # the event store fails while the second device is added
        if kw.get("device") == unlucky.mac:
            raise OSError(28, "No space left on device")
        real(kind, **kw)

    collector.events.write = write
    await collector.refresh_devices()
    collector.events.write = real
    await collector.ingest.drain()
    for mac in (good.mac, unlucky.mac):
        assert collector.scheduler.get_job(f"poll:{mac}") is not None, mac
    assert set(collector.states) == {good.mac, unlucky.mac}
    assert kinds(collector).count("device_skipped") == 3
    await collector.refresh_devices()  # the same bad entries an hour later: no new events
    await collector.ingest.drain()
    assert kinds(collector).count("device_skipped") == 3


@pytest.mark.parametrize("error", [PayloadError("energy usage year 1000000000000000000 out of range"),
                                   RuntimeError("anything else")])
async def test_energy_failures_are_evented_and_retried(collector: Collector, error: Exception) -> None:
    mac = "aabbccddeeff"
    collector.client.devices = [Dev(mac, energy_error=error)]
    await collector.refresh_devices()
    await collector.fetch_energy(mac)
    await collector.ingest.drain()
    assert collector.scheduler.get_job(f"energy-retry:{mac}") is not None
    assert "energy_failed" in kinds(collector)
    assert collector.states[mac].energy_failures == 1


async def test_warehouse_refresh_runs_beside_polls_never_twice(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    lock = threading.Lock()
    runs: list[tuple[float, float]] = []
    overlap = []

    def refresh() -> None:  # slower than its own interval
        if not lock.acquire(blocking=False):
            overlap.append(time.monotonic())
            return
        try:
            t0 = time.monotonic()
            time.sleep(1.2)
            runs.append((t0, time.monotonic()))
        finally:
            lock.release()

    caplog.set_level(logging.INFO)
    data = tmp_path / "data"
    async with FakeCloud(n_devices=2, speed=1200.0, seed=2) as fc:  # a poll every 0.25 s
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run_collection(
            fake_config(fc, data), interval=300, duration_min=None, clock=fc.clock, mode="embedded",
            status_line=False, stop=stop, ready=ready, refresh=refresh, refresh_every_s=0.5))
        await asyncio.wait_for(ready.wait(), 20)
        await asyncio.sleep(5.0)
        stop.set()
        stats = await asyncio.wait_for(task, 40)
    assert len(runs) >= 2 and not overlap
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(runs))  # one after the other
    assert stats.refreshes == len(runs)
    # polls kept their 0.25 s schedule while refreshes ran (each refresh spans ~5 polls per device)
    busy = sum(e - s for s, e in runs)
    assert busy > 2.0
    assert stats.polls_missed == 0 and stats.on_time_share is not None and stats.on_time_share > 0.9
    for d in fc.devices:
        assert stats.polls_ok[d.mac] >= 12
    assert not [r for r in caplog.records if r.exc_info or "raised an exception" in r.getMessage()]


async def test_a_failing_refresh_is_an_event_not_fatal(tmp_path: Path) -> None:
    def refresh() -> None:
        raise RuntimeError("warehouse locked by another writer")

    data = tmp_path / "data"
    async with FakeCloud(n_devices=1, speed=1200.0, seed=2) as fc:
        stats = await run_collection(fake_config(fc, data), interval=300, duration_min=0.05, clock=fc.clock,
                                     mode="embedded", status_line=False, refresh=refresh, refresh_every_s=0.5)
    assert stats.fatal is None and stats.failures["warehouse_refresh"] >= 2
    ev = scan_dataset(data, "events").filter(pl.col("kind") == "warehouse_refresh_failed").collect()
    details = ev.get_column("detail").to_list()
    assert sum("locked by another writer" in d for d in details) == 1  # one outage, not one per attempt
    assert sum(stats.polls_ok.values()) >= 8


async def test_stop_waits_for_a_running_flush_instead_of_cancelling_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    real = Store.flush
    started = threading.Event()

    def flush(store: Store) -> Any:  # a slow disk: each flush takes a second
        started.set()
        time.sleep(1.0)
        return real(store)

    monkeypatch.setattr(Store, "flush", flush)
    caplog.set_level(logging.INFO)
    data = tmp_path / "data"
    async with FakeCloud(n_devices=2, speed=1200.0, seed=6) as fc:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run_collection(
            fake_config(fc, data), interval=300, duration_min=None, clock=fc.clock, mode="embedded",
            status_line=False, stop=stop, ready=ready, flush_every_s=0.2))
        await asyncio.wait_for(ready.wait(), 30)
        await asyncio.sleep(1.0)
        started.clear()
        for _ in range(500):  # stop just after a flush started: it runs for another second
            if started.is_set():
                break
            await asyncio.sleep(0.01)
        stop.set()
        stats = await asyncio.wait_for(task, 60)
    assert stats.fatal is None
    messages = [r.getMessage() for r in caplog.records]
    assert any(re.search(r"waiting for \d+ housekeeping job", m) for m in messages)
    assert not [r for r in caplog.records if r.exc_info or "raised an exception" in r.getMessage()]
    keys = scan_dataset(data, "status").select("device", "received_at", "content_hash").collect()
    assert keys.height == sum(stats.samples.values())
