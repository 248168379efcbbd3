"""Incremental refresh: refreshing as each flush of simulated data appears equals one full build;
the file opens in a plain DuckDB client anywhere; readers never see half a refresh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from navilink_etl import marts, warehouse
from navilink_etl.config import NaviLinkConfig

TZ = "America/Chicago"
START = datetime(2026, 1, 5, tzinfo=UTC)


def _simulate(data: Path, scenario: str) -> None:
    from navilink_etl.sim.simulate import simulate

    common: dict[str, Any] = {"devices": 1, "interval_s": 30, "loss": 0.05, "ems_tz": TZ}
    if scenario == "outage":  # a 7 h outage across local midnight, polls lost at random
        simulate(data, days=3, start=START, seed=21, **common, outages=[
            (START + timedelta(days=1, hours=3), START + timedelta(days=1, hours=10))])
    elif scenario == "vacation":  # standby windows lasting days
        simulate(data, days=3, start=START, seed=22, mode=5, draws="none", **common)
    elif scenario == "late_device":  # a second heater starts reporting on the third day
        simulate(data, days=3, start=START, seed=23, **common)
        simulate(data, days=1.5, start=START + timedelta(days=2, hours=7), seed=24,
                 location="garage", **common)
    else:
        raise ValueError(scenario)


def _config(data: Path) -> NaviLinkConfig:
    return NaviLinkConfig(data_dir=data, polling_interval=30, timezone=TZ)


def _status_partitions(src: Path) -> dict[date, list[Path]]:
    days: dict[date, list[Path]] = {}
    for f in sorted((src / "status").glob("device=*/date=*/*.parquet")):
        days.setdefault(date.fromisoformat(f.parent.name[5:]), []).append(f)
    return dict(sorted(days.items()))


def _write(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path)


def _replay(src: Path, dst: Path, flushes_per_day: int = 2) -> list[int]:
    """Copy ``src``'s status files into ``dst`` one flush at a time (each UTC day's rows in
    ``flushes_per_day`` files, the device's EMS history up to that day), refreshing after each."""
    energy = pl.read_parquet(src / "energy" / "**" / "*.parquet")
    recomputed = []
    for day, files in _status_partitions(src).items():
        for k in range(flushes_per_day):
            for f in files:
                df = pl.read_parquet(f).sort("received_at")
                n = df.height
                part = df.slice(k * n // flushes_per_day,
                                (k + 1) * n // flushes_per_day - k * n // flushes_per_day)
                _write(part, dst / f.relative_to(src).parent / f"part-{k}.parquet")
            for (dev,), rows in energy.filter(pl.col("day") <= day).group_by(["device"]):
                _write(rows, dst / "energy" / f"device={dev}" / "part-0.parquet")
            result = warehouse.refresh(_config(dst))
            assert not result.full or not recomputed, result.reasons
            recomputed.append(result.device_days)
    return recomputed


def _tables(path: Path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [*marts.TABLES, "int_cycles"]
        return {n: con.sql(f"select * from {n} order by all").pl() for n in names}
    finally:
        con.close()


@pytest.mark.parametrize("scenario", ["outage", "vacation", "late_device"])
def test_refreshing_flush_by_flush_equals_a_full_build(scenario: str, tmp_path: Path) -> None:
    src, inc, full = tmp_path / "src", tmp_path / "inc", tmp_path / "full"
    _simulate(src, scenario)
    recomputed = _replay(src, inc)
    shutil.copytree(inc / "status", full / "status")
    shutil.copytree(inc / "energy", full / "energy")
    assert warehouse.refresh(_config(full), full=True).full
    a, b = _tables(inc / "warehouse.duckdb"), _tables(full / "warehouse.duckdb")
    for name in a:
        assert a[name].height == b[name].height, name
        assert_frame_equal(a[name], b[name], check_exact=False, rel_tol=1e-7, abs_tol=1e-6), name
    assert b["heating_cycles"].height >= 3 and b["energy_daily"].height >= 3
    # after the first flush, a refresh recomputes the last days, not the history
    assert max(recomputed[1:]) <= 4 * b["energy_daily"]["device"].n_unique()


def test_refresh_without_changes_recomputes_nothing_and_settings_force_a_full_build(
        tmp_path: Path) -> None:
    _simulate(tmp_path, "outage")
    first = warehouse.refresh(_config(tmp_path))
    assert first.full and first.device_days >= 3 and first.rows > 0
    again = warehouse.refresh(_config(tmp_path))
    assert not again.full and again.device_days == 0 and again.rows == 0
    other = NaviLinkConfig(data_dir=tmp_path, polling_interval=30, timezone=TZ, price_per_kwh=0.3)
    changed = warehouse.refresh(other)
    assert changed.full and changed.reasons == ["the settings or prices changed"]
    prices = warehouse.query(other, "select price_per_kwh from efficiency_daily "
                                    "where cost is not null")["price_per_kwh"]
    assert prices.len() >= 3 and (prices - 0.3).abs().max() < 1e-9  # type: ignore[operator]


def test_removed_day_files_remove_their_rows(tmp_path: Path) -> None:
    _simulate(tmp_path, "outage")
    warehouse.refresh(_config(tmp_path))
    last = max(_status_partitions(tmp_path))
    shutil.rmtree(next((tmp_path / "status").glob(f"device=*/date={last}")))
    result = warehouse.refresh(_config(tmp_path))
    assert not result.full and result.files_changed == 1
    inc = _tables(tmp_path / "warehouse.duckdb")
    shutil.copy(tmp_path / "warehouse.duckdb", tmp_path / "inc.duckdb")
    warehouse.refresh(_config(tmp_path), full=True)
    full = _tables(tmp_path / "warehouse.duckdb")
    for name in full:
        assert_frame_equal(inc[name], full[name], check_exact=False, rel_tol=1e-7, abs_tol=1e-6)
    assert full["int_day_energy"]["local_day"].max() <= last  # type: ignore[operator]


def test_the_file_opens_anywhere_in_a_plain_client(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "a" / "data"
    _simulate(data, "outage")
    warehouse.refresh(_config(data))
    moved = tmp_path / "elsewhere" / "copy"
    moved.parent.mkdir()
    shutil.move(str(data), str(moved))
    other = tmp_path / "cwd"
    other.mkdir()
    monkeypatch.chdir(other)
    t0 = time.perf_counter()
    con = duckdb.connect(str(moved / "warehouse.duckdb"), read_only=True)
    counts = {m: con.sql(f"select * from {m}").pl().height for m in marts.MARTS}
    con.close()
    assert time.perf_counter() - t0 < 1.0
    assert counts["energy_daily"] >= 3 and counts["heating_cycles"] > 0 and counts["draws"] > 0
    # the raw-sample views need the project's connect(), which resolves them in the moved folder
    con = warehouse.connect(moved)
    assert con.sql("select count(*) from stg_status").fetchall()[0][0] > 1000
    con.close()


READER = """
import sys, time, duckdb
path, out, stop = sys.argv[1:4]
with open(out, "w") as fh:
    while True:
        try:
            con = duckdb.connect(path, read_only=True)
            row = con.sql("select (select count(*) from energy_daily), "
                          "(select count(*) from heating_cycles), (select count(*) from draws), "
                          "(select max(refreshed_at)::varchar from warehouse_meta)").fetchall()[0]
            con.close()
            fh.write("ok " + "|".join(map(str, row)) + "\\n")
        except Exception as exc:
            fh.write("error " + repr(exc).replace("\\n", " ") + "\\n")
        fh.flush()
        if __import__("os").path.exists(stop):
            break
"""


def _state(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    row = con.sql("select (select count(*) from energy_daily), (select count(*) from "
                  "heating_cycles), (select count(*) from draws), (select max(refreshed_at)::varchar "
                  "from warehouse_meta)").fetchall()[0]
    con.close()
    return "|".join(map(str, row))


def test_a_reader_in_a_loop_never_fails_nor_sees_half_a_refresh(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "data"
    _simulate(src, "outage")
    days = list(_status_partitions(src).items())
    for f in days[0][1]:
        _write(pl.read_parquet(f), dst / f.relative_to(src))
    warehouse.refresh(_config(dst))
    path = dst / "warehouse.duckdb"
    states = {_state(path)}
    out, stop = tmp_path / "reads.txt", tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(out), str(stop)],
                              env={**os.environ, "HOME": str(tmp_path)})
    try:
        time.sleep(0.5)
        for _day, files in days[1:]:
            for f in files:
                _write(pl.read_parquet(f), dst / f.relative_to(src))
            warehouse.refresh(_config(dst))
            states.add(_state(path))
            time.sleep(0.2)
        warehouse.refresh(_config(dst), full=True)
        states.add(_state(path))
        time.sleep(0.3)
    finally:
        stop.touch()
        reader.wait(timeout=30)
    reads = out.read_text().splitlines()
    assert len(states) >= 4  # three incremental refreshes and a full one
    assert len(reads) > 10
    assert not [r for r in reads if not r.startswith("ok ")], reads[:3]
    assert {r[3:] for r in reads} <= states


def test_cli_refresh_and_its_views_alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from navilink_etl.cli import app
    from tests.golden.builders import status_rows, write_status

    write_status(tmp_path, status_rows("aabbccddeeff", [(i * 30, {}) for i in range(20)]))
    monkeypatch.setenv("NAVILINK_DATA_DIR", str(tmp_path))
    first = CliRunner().invoke(app, ["refresh"])
    assert first.exit_code == 0, first.output
    assert "rebuilt (no warehouse yet)" in first.output and "1 device-days" in first.output
    again = CliRunner().invoke(app, ["views"])
    assert again.exit_code == 0 and "refreshed" in again.output and "0 device-days" in again.output
    full = CliRunner().invoke(app, ["refresh", "--full"])
    assert full.exit_code == 0 and "rebuilt (--full)" in full.output
