"""Collector end to end on the embedded fake cloud: real REST + MQTT on 127.0.0.1, real Parquet."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from pydantic import SecretStr

from navilink_etl.collect.run import run_collection, run_collector
from navilink_etl.collect.store import scan_dataset
from navilink_etl.config import NaviLinkConfig
from navilink_etl.embedded import embedded_cloud
from navilink_etl.sim.cloud import FakeCloud

ROOT = Path(__file__).resolve().parents[1]


def embedded_config(data_dir: Path) -> NaviLinkConfig:
    return NaviLinkConfig(data_dir=data_dir, timezone="UTC", email=None, password=None)


def fake_config(fc: FakeCloud, data_dir: Path, **extra: Any) -> NaviLinkConfig:
    over = fc.client_overrides() | extra
    over["password"] = SecretStr(str(over["password"]))
    return NaviLinkConfig(data_dir=data_dir, timezone="UTC").model_copy(update=over)


def q(sql: str) -> list[tuple]:
    return duckdb.connect().sql(sql).fetchall()


async def test_embedded_collector_stores_every_answered_poll(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # speed 1200: 9 real seconds are 3 simulated hours; 300 s interval -> a poll every 0.25 s
    stats = await run_collector(embedded_config(data), interval=300, duration_min=0.15, status_line=False,
                                cloud=embedded_cloud(devices=2, speed=1200.0))
    assert stats.fatal is None and stats.mode == "embedded"
    assert len(stats.devices) == 2
    glob = f"{data}/status/**/*.parquet"
    per_dev = dict(q(f"select device, count(*) from read_parquet('{glob}', hive_partitioning=true) "
                     "where kind = 'reply' group by device"))
    for mac in stats.devices:
        assert stats.polls_ok[mac] >= 20  # ~36 expected; the machine is shared
        # every reply received is stored once; a reply arriving after its poll timed out counts
        # as a failed poll but is still stored, so replies lie between answered and made polls
        assert per_dev[mac] == stats.replies[mac]
        assert stats.polls_ok[mac] <= per_dev[mac] <= stats.polls_ok[mac] + stats.polls_failed[mac]
    total = q(f"select count(*), count(distinct (device, received_at, content_hash)) "
              f"from read_parquet('{glob}', hive_partitioning=true)")[0]
    assert total[0] == total[1] == sum(stats.samples.values())  # pushes too, no duplicates
    # samples are stamped on the simulated clock: ~3 h apart, not 9 s
    span = q(f"select max(received_at) - min(received_at) from read_parquet('{glob}')")[0][0]
    assert span > timedelta(hours=1)
    # energy history backfilled (12 months, one request per year)
    energy = scan_dataset(data, "energy").collect()
    assert energy.group_by("device").len().get_column("len").min() >= 300
    # the device's own TOU plan is kept for the warehouse's tariff (the captured PG&E plan)
    for mac in stats.devices:
        plan = json.loads((data / "tou" / f"{mac}.json").read_text())
        assert plan["touInfo"]["schedule"][0]["interval"][0]["week"] == 124
    kinds = set(scan_dataset(data, "events").collect().get_column("kind"))
    assert {"collector_started", "device_added", "collector_stopped"} <= kinds
    log = (data / "logs" / "collector.log").read_text()
    assert "EMBEDDED SIMULATOR" in log.splitlines()[0]
    assert (data / "spool" / "spool.sqlite").exists() and stats.files_written > 0


class FaultRun:
    """A collector on a FakeCloud in the background, with simulated-time marks for assertions."""

    def __init__(self, fc: FakeCloud, data: Path, interval: float) -> None:
        self.fc, self.data, self.interval = fc, data, interval
        self.real_iv = interval / fc.clock.speed
        self.stop, self.ready = asyncio.Event(), asyncio.Event()
        self.marks: dict[str, datetime] = {}
        self.task = asyncio.create_task(run_collection(
            fake_config(fc, data, request_timeout=max(1.0, self.real_iv * 0.8)), interval=interval,
            duration_min=None, clock=fc.clock, mode="embedded", status_line=False, stop=self.stop,
            ready=self.ready))

    async def wait_intervals(self, n: float) -> None:
        await asyncio.sleep(n * self.real_iv)

    def mark(self, name: str) -> None:
        self.marks[name] = self.fc.clock.now()

    async def finish(self) -> Any:
        self.stop.set()
        return await asyncio.wait_for(self.task, 40)

    def resumed_within_two_intervals(self, mac: str, mark: str) -> bool:
        after = self.marks[mark]
        st = scan_dataset(self.data, "status").filter(
            (pl.col("device") == mac) & (pl.col("received_at") > after)).collect()
        first = st.get_column("received_at").min()
        return first is not None and first - after <= timedelta(seconds=2 * self.interval)


async def test_collector_rides_out_device_faults_and_records_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with FakeCloud(n_devices=2, speed=400.0, seed=3) as fc:  # a poll every 0.75 real s
        mac0, mac1 = fc.devices[0].mac, fc.devices[1].mac
        run = FaultRun(fc, data, interval=300.0)
        await asyncio.wait_for(run.ready.wait(), 20)
        # let the start-up REST calls (each device's TOU plan) finish first, so that the failures
        # below land on the device-list refreshes
        plans = [data / "tou" / f"{m}.json" for m in (mac0, mac1)]
        for _ in range(200):
            if all(p.exists() for p in plans):
                break
            await asyncio.sleep(0.05)
        fc.rest_fail_next(3, 503)  # the next device-list refreshes fail
        await run.wait_intervals(3)
        fc.set_offline(mac0, True)
        await run.wait_intervals(5)
        fc.set_offline(mac0, False)
        run.mark("online")
        fc.malformed_next(mac1, 2)
        await run.wait_intervals(3)
        fc.drop_replies(0.5)
        await run.wait_intervals(4)
        fc.drop_replies(0.0)
        run.mark("no_drops")
        await run.wait_intervals(3)
        stats = await run.finish()

    assert stats.fatal is None
    ev = scan_dataset(data, "events").collect()
    kinds = ev.get_column("kind").to_list()
    # the offline device: an outage opened and closed, with its length; polls resumed in time
    off = ev.filter((pl.col("device") == mac0) & pl.col("kind").is_in(["poll_failed", "device_recovered"]))
    assert {"poll_failed", "device_recovered"} <= set(off.get_column("kind"))
    assert off.filter(pl.col("kind") == "device_recovered").get_column("duration_s").max() >= 2 * 300
    assert run.resumed_within_two_intervals(mac0, "online")
    # malformed replies: quarantined with the reason and the raw text
    qr = scan_dataset(data, "quarantine").collect()
    assert qr.height >= 1 and stats.quarantined == qr.height
    assert qr.filter((pl.col("reason").str.len_chars() > 0) & (pl.col("raw").str.len_chars() > 0)
                     & (pl.col("device") == mac1)).height == qr.height
    assert "malformed_message" in kinds
    # lost replies and REST errors: counted, recorded, and both devices still polled afterwards
    assert stats.failures["timeout"] + stats.failures["offline"] > 0
    assert "rest_error" in kinds and stats.failures["device_list"] >= 1
    for mac in (mac0, mac1):
        assert run.resumed_within_two_intervals(mac, "no_drops")
    keys = scan_dataset(data, "status").select("device", "received_at", "content_hash").collect()
    assert keys.height == keys.unique().height == sum(stats.samples.values())


async def test_collector_survives_disconnects_and_expired_credentials(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # interval 300 s at speed 60: a poll every 5 real seconds, which covers a reconnect
    async with FakeCloud(n_devices=1, speed=60.0, seed=5) as fc:
        mac = fc.devices[0].mac
        run = FaultRun(fc, data, interval=300.0)
        await asyncio.wait_for(run.ready.wait(), 20)
        await run.wait_intervals(1)
        await fc.force_disconnect()
        run.mark("disconnected")
        await run.wait_intervals(2.2)
        await fc.expire_credentials()
        run.mark("expired")
        await run.wait_intervals(2.4)
        stats = await run.finish()

    assert stats.fatal is None
    kinds = scan_dataset(data, "events").collect().get_column("kind").to_list()
    assert kinds.count("mqtt_disconnected") >= 2 and kinds.count("mqtt_reconnected") >= 2
    assert "credentials_renewed" in kinds
    assert run.resumed_within_two_intervals(mac, "disconnected")
    assert run.resumed_within_two_intervals(mac, "expired")
    ev = scan_dataset(data, "events").filter(pl.col("kind") == "mqtt_reconnected").collect()
    assert ev.get_column("duration_s").min() > 0  # how long MQTT was down, in simulated seconds


@pytest.mark.slow
async def test_collector_survives_a_broker_outage(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with FakeCloud(n_devices=2, speed=60.0, seed=7) as fc:
        run = FaultRun(fc, data, interval=300.0)
        await asyncio.wait_for(run.ready.wait(), 20)
        await run.wait_intervals(1)
        await fc.broker_down(8.0)  # longer than one interval
        await asyncio.sleep(8.0)
        run.mark("broker_up")
        await run.wait_intervals(2.5)
        stats = await run.finish()
    assert stats.fatal is None
    for d in fc.devices:
        assert run.resumed_within_two_intervals(d.mac, "broker_up")
    kinds = scan_dataset(data, "events").collect().get_column("kind").to_list()
    assert "mqtt_disconnected" in kinds and "mqtt_reconnected" in kinds


async def test_devices_added_and_removed_on_the_account_are_followed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with FakeCloud(n_devices=2, speed=3600.0, seed=9) as fc:  # device list every 1 real s
        run = FaultRun(fc, data, interval=3600.0)
        await asyncio.wait_for(run.ready.wait(), 20)
        assert fc.rest is not None
        gone = fc.rest.devices.pop()  # the account no longer lists it
        await asyncio.sleep(2.5)
        run.mark("removed")
        await asyncio.sleep(1.5)
        fc.rest.devices.append(gone)
        await asyncio.sleep(3.0)
        stats = await run.finish()
    ev = scan_dataset(data, "events").filter(pl.col("device") == gone.mac).collect()
    assert ev.get_column("kind").to_list().count("device_added") == 2
    assert "device_removed" in ev.get_column("kind").to_list()
    assert stats.fatal is None
    st = scan_dataset(data, "status").filter(pl.col("device") == gone.mac).collect()
    assert st.filter(pl.col("received_at") > run.marks["removed"]).height > 0  # polled again


async def test_rejected_password_stops_without_retrying(tmp_path: Path) -> None:
    async with FakeCloud(n_devices=1, speed=60) as fc:
        cfg = fake_config(fc, tmp_path / "data", password=SecretStr("wrong-password"))
        t0 = time.monotonic()
        stats = await run_collection(cfg, interval=300, duration_min=1.0, clock=fc.clock,
                                     mode="embedded", status_line=False)
        assert fc.rest is not None and fc.rest.calls["user/sign-in"] == 1
    assert time.monotonic() - t0 < 20
    assert stats.fatal is not None and "rejected" in stats.fatal
    assert "wrong-password" not in stats.fatal and "NAVILINK_PASSWORD" in stats.fatal
    ev = scan_dataset(tmp_path / "data", "events").collect()
    assert "auth_failed" in ev.get_column("kind").to_list()


def test_sigterm_flushes_and_exits_zero(tmp_path: Path) -> None:
    data = tmp_path / "data"
    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from navilink_etl.config import NaviLinkConfig
        from navilink_etl.collect.run import run_collector
        from navilink_etl.embedded import embedded_cloud
        cfg = NaviLinkConfig(data_dir=Path({str(data)!r}), timezone="UTC")
        stats = asyncio.run(run_collector(cfg, interval=300, status_line=False,
                                          cloud=embedded_cloud(devices=1, speed=600)))
        sys.exit(1 if stats.fatal else 0)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAVILINK_")}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 40
        spool = data / "spool" / "spool.sqlite"
        while time.monotonic() < deadline and not (spool.exists() and _pending_rows(spool) > 4):
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert _pending_rows(data / "spool" / "spool.sqlite") == 0  # all flushed
    n = q(f"select count(*) from read_parquet('{data}/status/**/*.parquet', hive_partitioning=true)")[0][0]
    assert n > 4
    assert b"final statistics" in err


def _pending_rows(spool: Path) -> int:
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5)
        try:
            return int(con.execute("select count(*) from pending where dataset = 'status'").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("interval", [10.0])
async def test_real_cloud_floor_is_enforced(tmp_path: Path, interval: float) -> None:
    from navilink_etl.errors import ConfigurationError

    cfg = NaviLinkConfig(data_dir=tmp_path, timezone="UTC", email="me@example.com",
                         password=SecretStr("x" * 8))
    with pytest.raises(ConfigurationError, match="floor"):
        await run_collection(cfg, interval=interval, duration_min=0.01, clock=None, mode="cloud")


async def test_adaptive_cadence_polls_faster_while_heating(tmp_path: Path) -> None:
    from navilink_etl.protocol import Command, half_c_from_f

    data = tmp_path / "data"
    async with FakeCloud(n_devices=1, speed=600.0, seed=11) as fc:
        dev = fc.devices[0]
        dev.apply_control(Command.DHW_TEMPERATURE, "dhw-temperature", [half_c_from_f(150.0)])
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run_collection(
            fake_config(fc, data), interval=600.0, duration_min=None, clock=fc.clock,
            mode="embedded", status_line=False, stop=stop, ready=ready, adaptive=True))
        await asyncio.wait_for(ready.wait(), 20)
        await asyncio.sleep(3.0)  # 30 simulated minutes: 3 polls at the base interval
        stop.set()
        stats = await asyncio.wait_for(task, 30)
    st = scan_dataset(data, "status").filter(pl.col("kind") == "reply").sort("received_at").collect()
    heating = st.filter((pl.col("compUse") == 2) | (pl.col("heatUpperUse") == 2) | (pl.col("heatLowerUse") == 2))
    assert heating.height > 0, "the raised setpoint should make it heat"
    gaps = heating.get_column("received_at").diff().drop_nulls().dt.total_seconds()
    assert gaps.median() <= 600 / 4 + 30  # polled at a quarter of the interval while heating
    assert gaps.min() >= 30 - 5  # never below the 30 s floor
    assert stats.fatal is None
