"""A full disk at the collector's write sites: bounded memory, one retry task, nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import errno
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from navilink_etl.collect import store as store_mod
from navilink_etl.collect.ingest import Ingest
from navilink_etl.collect.run import run_collection
from navilink_etl.collect.stats import CollectorStats
from navilink_etl.collect.store import Store, scan_dataset
from navilink_etl.errors import StoreError
from navilink_etl.protocol import response_topic
from navilink_etl.sim.cloud import FakeCloud

from .test_collect import fake_config
from .test_ingest import MAC, T0, status_msg


class DiskFull:
    """Makes the store's write sites raise while ``full`` is set (ENOSPC, or a StoreError)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, as_store_error: bool = False) -> None:
        self.full = False
        self.refused = 0
        for name in ("append_status", "append_event", "quarantine", "append_energy", "flush"):
            self._wrap(monkeypatch, name, as_store_error)

    def _wrap(self, monkeypatch: pytest.MonkeyPatch, name: str, as_store_error: bool) -> None:
        real = getattr(Store, name)

        def write(store: Store, *a: Any, **kw: Any) -> Any:
            if self.full:
                self.refused += 1
                if as_store_error:
                    raise StoreError("cannot append to the spool: database or disk is full")
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(store, *a, **kw)

        monkeypatch.setattr(Store, name, write)


def spool_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "collector-spool"]


def collector_tasks(before: set[asyncio.Task[Any]]) -> list[str]:
    """Tasks started since ``before`` by the collector, the client or APScheduler (not the fake cloud's)."""
    out = []
    for t in asyncio.all_tasks() - before:
        code = getattr(t.get_coro(), "cr_code", None)
        where = code.co_filename if code is not None else ""
        if "navilink_etl/collect" in where or "navilink_etl/cloud" in where or "apscheduler" in where:
            out.append(f"{t.get_name()}: {code.co_name if code else t!r}")
    return out


@pytest.mark.parametrize("as_store_error", [False, True])
async def test_full_disk_holds_a_bounded_buffer_and_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             as_store_error: bool) -> None:
    disk = DiskFull(monkeypatch, as_store_error=as_store_error)
    store = Store(tmp_path / "data")
    stats = CollectorStats()
    before = asyncio.all_tasks()
    ing = Ingest(store, stats, source="test", stamp=lambda t: t, now=lambda: datetime.now(UTC), max_samples=300)
    ing.start()
    topic = response_topic(MAC, "c")
    ing.on_message(topic, status_msg(session="0"), T0)
    await ing.drain()
    disk.full = True
    for i in range(1, 1001):  # 1,000 new samples while nothing can be written
        ing.on_message(topic, status_msg(session=str(i)), T0 + timedelta(seconds=i))
        if i % 100 == 0:
            await asyncio.sleep(0.05)  # the writer task gets its turns (and fails)
    ing.on_message(topic, b"{not json", T0)  # a quarantine write waits too
    await asyncio.sleep(0.6)
    assert ing.buffered == 300 and stats.dropped == 700  # bounded: the rest counted as dropped
    assert len(spool_tasks()) == 1  # one retry task, not one per message
    assert len(asyncio.all_tasks() - before) == 1
    assert disk.refused >= 2 and ing.failing
    disk.full = False
    for _ in range(100):
        if not ing.failing and ing.buffered == 0:
            break
        await asyncio.sleep(0.1)
    assert not ing.failing and ing.buffered == 0
    await ing.stop()
    assert asyncio.all_tasks() - before == set()  # stop() awaited everything it started
    store.flush()
    status = scan_dataset(store.data_dir, "status").collect()
    assert status.height == 301 == sum(stats.samples.values())  # every accepted sample stored
    kinds = scan_dataset(store.data_dir, "events").collect().get_column("kind").to_list()
    assert kinds.count("disk_full") == 1 and kinds.count("store_recovered") == 1
    assert kinds.count("samples_dropped") == 1
    assert scan_dataset(store.data_dir, "quarantine").collect().height == 1
    store.close()


async def test_collector_rides_out_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    disk = DiskFull(monkeypatch)
    parquet_real = store_mod.atomic_write_parquet

    def parquet(df: pl.DataFrame, path: Path) -> int:
        if disk.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return parquet_real(df, path)

    monkeypatch.setattr(store_mod, "atomic_write_parquet", parquet)
    data = tmp_path / "data"
    caplog.set_level(logging.INFO)
    async with FakeCloud(n_devices=2, speed=600.0, seed=4) as fc:  # 300 s interval: a poll every 0.5 s
        before = asyncio.all_tasks()
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run_collection(
            fake_config(fc, data), interval=300, duration_min=None, clock=fc.clock, mode="embedded",
            status_line=False, stop=stop, ready=ready, flush_every_s=0.5))
        await asyncio.wait_for(ready.wait(), 20)
        await asyncio.sleep(1.5)
        disk.full = True
        await asyncio.sleep(3.0)
        n_tasks = len([t for t in asyncio.all_tasks() - before if t.get_name() == "collector-spool"])
        disk.full = False
        await asyncio.sleep(2.0)
        stop.set()
        stats = await asyncio.wait_for(task, 40)
        assert collector_tasks(before) == []  # stop() awaited every task it started
    assert n_tasks == 1 and disk.refused > 0
    assert stats.fatal is None and stats.dropped == 0 and stats.lost == 0
    keys = scan_dataset(data, "status").select("device", "received_at", "content_hash").collect()
    assert keys.height == keys.unique().height == sum(stats.samples.values())  # none lost, none twice
    for d in fc.devices:  # polled before, during and after the full disk
        assert stats.polls_ok[d.mac] >= 8
    kinds = scan_dataset(data, "events").collect().get_column("kind").to_list()
    assert "disk_full" in kinds and "store_recovered" in kinds
    assert not [r for r in caplog.records if r.exc_info or "raised an exception" in r.getMessage()]
