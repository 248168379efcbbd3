"""Bulk simulation: what lands in the store and the truth, loss and outages, determinism."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from navilink_etl.collect.store import scan_dataset
from navilink_etl.sim.device import SimulatedDevice
from navilink_etl.sim.ledger import TruthLog
from navilink_etl.sim.simulate import simulate
from navilink_etl.sim.truth import cycle_schema, device_schema, draw_schema, step_schema
from navilink_etl.status import NEWER_FIRMWARE_KEYS, STATUS_KEYS_2025_09, content_hash

START = datetime(2025, 3, 1, tzinfo=UTC)


def read(data_dir: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(str(data_dir / name / "**" / "*.parquet"), hive_partitioning=False)


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    d = tmp_path_factory.mktemp("sim")
    outage = (START + timedelta(hours=30), START + timedelta(hours=33))
    res = simulate(d, devices=2, days=2, interval_s=30.0, seed=11, loss=0.05, outages=[outage],
                   start=START, location="garage")
    return d, res


def test_status_rows_look_like_collected_ones(two_days: tuple[Path, object]) -> None:
    d, res = two_days
    st = scan_dataset(d, "status").collect()
    assert st.height == res.samples > 0  # type: ignore[attr-defined]
    assert set(st["source"].unique()) == {"simulator"}
    assert set(st["kind"].unique()) <= {"reply", "push"} and "push" in set(st["kind"])
    assert st["device"].n_unique() == 2
    # the 2025-09 profile: every captured key present, newer-firmware keys null
    assert all(st[k].null_count() == 0 for k in STATUS_KEYS_2025_09)
    assert all(st[k].null_count() == st.height for k in NEWER_FIRMWARE_KEYS)
    row = st.row(0, named=True)
    status = {k: row[k] for k in STATUS_KEYS_2025_09}
    assert row["content_hash"] == content_hash(status)
    pushes = st.filter(pl.col("kind") == "push")
    assert set(pushes["command"].unique()) <= {67108868, 67108883, 67108892}
    assert set(pushes["session_id"].unique()) <= {str(i) for i in range(10)}


def test_polls_loss_and_outage(two_days: tuple[Path, object]) -> None:
    d, res = two_days
    st = scan_dataset(d, "status").collect().sort("received_at")
    polls = st.filter(pl.col("kind") == "reply")
    per_dev = 2 * 2880
    assert res.polls == polls.height  # type: ignore[attr-defined]
    lost = 1 - polls.height / (2 * per_dev)
    assert 0.05 + 0.05 <= lost <= 0.05 + 0.09  # 5 % at random plus a 3 h outage of 48 h
    t = polls["received_at"]
    out = polls.filter((t >= START + timedelta(hours=30)) & (t < START + timedelta(hours=33)))
    assert out.height == 0
    # replies arrive 2-4 s after a request on the 30 s grid
    lag = (polls["received_at"].dt.epoch("us") / 1e6 - START.timestamp()) % 30.0
    assert lag.min() >= 2.0 and lag.max() <= 4.0


def test_power_lags_the_relays_by_one_message(two_days: tuple[Path, object]) -> None:
    d, _ = two_days
    st = scan_dataset(d, "status").collect().sort("device", "received_at")
    one = st.filter(pl.col("device") == st["device"][0])
    on = (one["compUse"] == 2).to_numpy()
    p = one["currentInstPower"].to_numpy()
    starts = np.flatnonzero(on[1:] & ~on[:-1]) + 1
    assert len(starts) > 0
    assert all(p[i] < 20 for i in starts)  # still the pre-run figure when the relay flips
    assert all(p[i + 1] > 250 for i in starts if i + 1 < len(p) and on[i + 1])  # compressor (cold garage)


def test_truth_tables(two_days: tuple[Path, object]) -> None:
    d, res = two_days
    steps, cycles, draws, devices = (read(d, f"truth/{n}") for n in ("steps", "cycles", "draws", "devices"))
    assert steps.schema == pl.Schema(step_schema())
    assert cycles.schema == pl.Schema(cycle_schema())
    assert draws.schema == pl.Schema(draw_schema())
    assert devices.schema == pl.Schema(device_schema())
    assert devices.height == 2 and set(devices["poll_interval_s"]) == {30.0}
    assert steps.height == 2 * 2 * 1440
    assert res.truth_rows == steps.height + cycles.height + draws.height + devices.height  # type: ignore[attr-defined]
    assert (steps["t_end"] - steps["t_start"]).dt.total_seconds().unique().to_list() == [60]
    # heat balance per device over the run
    for dev in devices["device"]:
        s = steps.filter(pl.col("device") == dev).sort("t_start")
        heat = s["heat_compressor_wh"].sum() + s["heat_element_wh"].sum()
        out = s["loss_wh"].sum() + s["draw_wh"].sum()
        d_stored = s["stored_wh"][-1] - s["stored_wh"][0]
        first = s.row(0, named=True)
        d_stored += (first["heat_compressor_wh"] + first["heat_element_wh"] - first["loss_wh"] - first["draw_wh"])
        assert abs(heat - out - d_stored) < 0.005 * max(heat, 1.0)
    # cycles and steps agree
    assert set(steps["cycle_id"].drop_nulls().unique()) <= set(cycles["cycle_id"])
    assert (cycles["end"] > cycles["start"]).all()
    assert draws["volume_l"].sum() == pytest.approx(steps["draw_l"].sum(), rel=1e-6)


def test_energy_history_matches_truth(two_days: tuple[Path, object]) -> None:
    d, _ = two_days
    energy = scan_dataset(d, "energy").collect()
    steps = read(d, "truth/steps")
    assert energy.height == 2 * 2 and set(energy["source"]) == {"simulator"}
    for (dev, day), part in steps.group_by(pl.col("device"), pl.col("t_start").dt.date()):
        e = energy.filter((pl.col("device") == dev) & (pl.col("day") == day)).row(0, named=True)
        assert e["he_wh"] == pytest.approx(part["elec_upper_wh"].sum() + part["elec_lower_wh"].sum(), abs=1)
        assert e["hp_wh"] >= part["elec_compressor_wh"].sum() - 1  # + fan pre-run


def test_same_seed_same_store(tmp_path: Path) -> None:
    kw = {"days": 0.5, "seed": 4, "loss": 0.1, "start": START, "outage_per_week": True}
    calls: list[tuple[int, int]] = []
    simulate(tmp_path / "a", progress=lambda done, total: calls.append((done, total)), **kw)  # type: ignore[arg-type]
    assert calls == [(1, 1)]
    simulate(tmp_path / "b", **kw)  # type: ignore[arg-type]
    simulate(tmp_path / "c", **{**kw, "seed": 5})  # type: ignore[arg-type]
    cols = ["received_at", "content_hash", "session_id", "kind"]
    a, b, c = (scan_dataset(tmp_path / x, "status").collect().sort("received_at").select(cols) for x in "abc")
    assert a.equals(b)
    assert not a.equals(c)
    ta, tb = (read(tmp_path / x, "truth/steps").sort("t_start") for x in "ab")
    assert ta.equals(tb)


def test_fast_idle_path_matches_the_step_path(tmp_path: Path) -> None:
    """The closed-form idle stretches give the same payloads as stepping every 30 s."""
    mac = "aabbccddeeff"
    start = datetime(2025, 7, 1, tzinfo=UTC)
    simulate(tmp_path, days=1, seed=3, start=start)
    stored = scan_dataset(tmp_path, "status").collect().sort("received_at")
    polls = stored.filter(pl.col("kind") == "reply")
    dev = SimulatedDevice(stored["device"][0], seed=3 * 1_000_003, start=start, truth=TruthLog(mac))
    rows = []
    for k in range(1, 2881):
        dev.advance_to(start + timedelta(seconds=30 * k))
        dev.drain_pushes()
        rows.append(dev.snapshot(16777219))
    ref = pl.DataFrame(rows)
    keys = ["tankUpperTemperature", "tankLowerTemperature", "ambientTemperature", "compUse",
            "operationMode", "availableEnergyCapacity", "wifiRssi", "dhwUse"]
    got = polls.select(keys)
    same = (got == ref.select(keys)).to_numpy().all(axis=1)
    assert same.mean() > 0.995  # only rounding at a deci-degC boundary may differ


def test_other_sizes_and_firmware(tmp_path: Path) -> None:
    res = simulate(tmp_path, days=0.25, seed=1, start=START, volume_gal=80, location="conditioned",
                   firmware="2025-10", interval_s=60.0)
    st = scan_dataset(tmp_path, "status").collect()
    assert st.height == res.samples and res.polls == 360
    assert all(st[k].null_count() == 0 for k in NEWER_FIRMWARE_KEYS)
    dev = read(tmp_path, "truth/devices").row(0, named=True)
    assert dev["volume_gal"] == 80 and dev["water_l"] == 302.8 and dev["location"] == "conditioned"


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loss"):
        simulate(tmp_path, days=1, loss=1.5, start=START)
    with pytest.raises(ValueError, match="timezone"):
        simulate(tmp_path, days=1, start=datetime(2025, 1, 1))


def test_writer_process_writes_the_same(tmp_path: Path) -> None:
    kw = {"days": 0.25, "seed": 6, "loss": 0.05, "start": START}
    a = simulate(tmp_path / "a", writer_process=False, **kw)  # type: ignore[arg-type]
    b = simulate(tmp_path / "b", writer_process=True, **kw)  # type: ignore[arg-type]
    assert (a.samples, a.truth_rows, a.energy_rows) == (b.samples, b.truth_rows, b.energy_rows)
    sa, sb = (scan_dataset(tmp_path / x, "status").collect().sort("received_at") for x in "ab")
    assert sa.drop("date").equals(sb.drop("date"))


def test_two_months_with_loss_and_weekly_outages_cover_every_day(tmp_path: Path) -> None:
    """The long-run path (writer process, sampled parser checks) keeps every day and every gap
    honest; its speed is measured in bench/bench_simulate.py, not here."""
    days = 61
    res = simulate(tmp_path, days=days, seed=1, loss=0.05, outage_per_week=True, start=START)
    assert res.energy_rows == days
    # 2880 polls a day at 30 s, 5 % lost at random, plus a multi-hour outage each week
    assert 0.80 * days * 2880 < res.polls < 0.96 * days * 2880
    assert res.lost > 0.04 * days * 2880
    st = pl.scan_parquet(tmp_path / "status" / "**" / "*.parquet").select(
        pl.col("received_at").dt.date().alias("d")).unique().collect()
    assert st.height >= days  # no day missing, even with the outages
