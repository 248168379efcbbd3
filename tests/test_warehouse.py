"""Warehouse plumbing and hand-built golden cases: the model registry, empty data, movable folder,
read-only use, settings, tariffs, and one given/expected case per model in tests/golden/cases/."""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from navilink_etl import marts, tariff, warehouse
from navilink_etl.config import NaviLinkConfig
from tests.conftest import load_capture
from tests.golden.builders import T0, status_rows, write_energy, write_status

CASES = sorted((Path(__file__).parent / "golden" / "cases").glob("*.json"))
MAC = "aabbccddeeff"


def _config(data_dir: Path, **kw: Any) -> NaviLinkConfig:
    kw.setdefault("polling_interval", 30)
    kw.setdefault("timezone", "UTC")
    return NaviLinkConfig(data_dir=data_dir, **kw)


def _quiet_samples(n: int = 10, step: int = 30) -> list[tuple[float, dict[str, Any]]]:
    return [(i * step, {}) for i in range(n)]


# --- plumbing -----------------------------------------------------------------------------------


def test_registry_matches_sql_files() -> None:
    on_disk = {p.stem for p in warehouse.sql_dir().glob("*.sql")}
    assert on_disk == set(marts.NAMES)
    assert len(set(marts.NAMES)) == len(marts.NAMES)
    for m in marts.MODELS:
        assert (m.day_column is not None) == (m.keep == "days"), m.name
        assert m.stored or m.keep == "device", m.name


def _refs(sql: str, names: set[str]) -> set[str]:
    return {w for w in names if f"from {w}\n" in sql or f"from {w} " in sql or f"join {w} " in sql}


def test_every_model_file_states_grain_inputs_units_and_reads_only_earlier_models() -> None:
    names = set(marts.NAMES) | set(warehouse.SOURCES) | {"settings", "tariff_tou", "tariff_csv"}
    for i, name in enumerate(marts.NAMES):
        sql = warehouse.model_sql(name)
        header = sql.split("\nwith", 1)[0]
        assert header.startswith(f"-- {name}: one row per"), name
        assert "-- Inputs:" in header and "Units:" in header, name
        later = _refs(sql, names) & set(marts.NAMES[i:])
        assert not later, f"{name} reads {later}, which are not created before it"
        assert "/" not in "".join(line for line in sql.splitlines() if "read_parquet" in line)


def test_device_models_read_no_raw_samples() -> None:
    """Fits and marts are refreshed from stored tables only (the EMS history is one row a day)."""
    raw = {m.name for m in marts.of_keep("view")} - {"stg_energy_daily"} | set(warehouse.SOURCES)
    for m in marts.of_keep("device"):
        assert not _refs(warehouse.model_sql(m.name), raw), m.name


def test_empty_data_dir_builds_and_every_view_is_empty(tmp_path: Path) -> None:
    path = warehouse.refresh(_config(tmp_path)).path
    assert path == tmp_path / "warehouse.duckdb"
    con = warehouse.connect(_config(tmp_path))
    for view in marts.NAMES:
        assert con.sql(f"select count(*) from {view}").fetchall() == [(0,)], view
    # typed even when empty
    types = dict(zip(*[con.sql("select * from int_intervals").columns,
                       con.sql("select * from int_intervals").types], strict=True))
    assert str(types["interval_start"]) == "TIMESTAMP WITH TIME ZONE"
    assert str(types["compressor_wh"]) == "DOUBLE"
    con.close()


def test_sources_appear_without_a_rebuild(tmp_path: Path) -> None:
    warehouse.refresh(_config(tmp_path))
    write_status(tmp_path, status_rows(MAC, _quiet_samples()))
    con = warehouse.connect(tmp_path, read_only=True)
    assert con.sql("select count(*) from stg_status").fetchall() == [(10,)]
    con.close()


def test_folder_can_be_moved_and_no_absolute_path_is_stored(tmp_path: Path) -> None:
    src = tmp_path / "a" / "data"
    write_status(src, status_rows(MAC, _quiet_samples()))
    warehouse.refresh(_config(src))
    raw = duckdb.connect(str(src / "warehouse.duckdb"), read_only=True)
    sql = " ".join(r[0] for r in raw.sql("select sql from duckdb_views() where not internal").fetchall())
    raw.close()
    assert "read_parquet('status/**/*.parquet'" in sql
    assert str(tmp_path) not in sql
    dst = tmp_path / "b" / "moved"
    dst.parent.mkdir()
    shutil.move(str(src), str(dst))
    con = warehouse.connect(dst, read_only=True)
    assert con.sql("select count(*) from stg_status").fetchall() == [(10,)]
    assert con.sql("select count(*) from energy_daily").fetchall() == [(1,)]
    con.close()


def test_query_returns_polars_and_applies_config(tmp_path: Path) -> None:
    write_status(tmp_path, status_rows(MAC, _quiet_samples()))
    cfg = _config(tmp_path, timezone="Asia/Tokyo", price_per_kwh=0.3)
    warehouse.refresh(cfg)
    df = warehouse.query(cfg, "select * from settings")
    assert isinstance(df, pl.DataFrame)
    assert df["timezone"][0] == "Asia/Tokyo" and df["gap_cap_s"][0] == 90.0
    # a config with other settings rebuilds the tables with them
    other = _config(tmp_path, timezone="UTC", polling_interval=600)
    assert warehouse.query(other, "select gap_cap_s from settings")["gap_cap_s"][0] == 900.0
    days = warehouse.query(cfg, "select day from energy_daily")
    assert days["day"][0].isoformat() == "2026-01-05"  # 00:00 UTC is 09:00 in Tokyo


def test_connect_rebuilds_when_sql_changed(tmp_path: Path) -> None:
    warehouse.refresh(_config(tmp_path))
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("update warehouse_meta set sql_fingerprint = 'stale'")
    con.close()
    con = warehouse.connect(_config(tmp_path))
    assert con.sql("select sql_fingerprint from warehouse_meta").fetchall()[0][0] != "stale"
    con.close()


def test_duplicates_are_dropped_in_staging(tmp_path: Path) -> None:
    rows = status_rows(MAC, _quiet_samples(5))
    write_status(tmp_path, rows)
    write_status(tmp_path, rows[1:3], part="part-1")  # redelivered
    con = warehouse.connect(_config(tmp_path))
    assert con.sql("select count(*) from src_status").fetchall() == [(7,)]
    assert con.sql("select count(*) from stg_status").fetchall() == [(5,)]
    con.close()


def test_unknown_relay_flags_are_inferred_from_power(tmp_path: Path) -> None:
    samples = [(0, {}), (30, {"compUse": 0, "power": 1}), (60, {"power": 440}), (90, {"compUse": 1})]
    write_status(tmp_path, status_rows(MAC, samples))
    con = warehouse.connect(_config(tmp_path))
    rows = con.sql("select compressor_on, aligned_power_w from int_intervals order by 1 nulls last").fetchall()
    assert (True, 440.0) in rows
    con.close()


# --- golden cases -------------------------------------------------------------------------------


def _close(a: Any, b: Any) -> bool:
    if isinstance(b, float | int) and not isinstance(b, bool) and a is not None:
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)
    return bool(a == b)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_case(case: Path, tmp_path: Path) -> None:
    spec = json.loads(case.read_text())
    given = spec["given"]
    t0 = datetime.fromisoformat(given["t0"])
    write_status(tmp_path, status_rows(given["device"], given["samples"], t0))
    con = warehouse.connect(_config(tmp_path, **spec.get("config", {})))
    got = con.sql(spec["query"]).pl().to_dicts()
    con.close()
    expected = spec["expected"]
    assert len(got) == len(expected), got
    for row, want in zip(got, expected, strict=True):
        bad = {k: (row[k], v) for k, v in want.items() if not _close(row[k], v)}
        assert not bad, f"{case.stem}: {bad}"


def test_standby_window_fit_recovers_k_and_ua(tmp_path: Path) -> None:
    """T = 20 + 30 exp(-k t) for 5 h, energy fields consistent with C = 281.2 Wh/K."""
    k, cpk, sp = 0.0075, 70.3, 55.0
    samples = []
    for i in range(5 * 120 + 1):
        t_h = i * 30 / 3600
        temp = 20 + 30 * math.exp(-k * t_h)
        samples.append((i * 30, {"upper_c": temp, "lower_c": temp, "ambient_c": 20,
                                 "setpoint_c": sp, "total": round(cpk * (sp - 35)),
                                 "available": round(cpk * (sp - temp))}))
    write_status(tmp_path, status_rows(MAC, samples))
    con = warehouse.connect(_config(tmp_path))
    fit = con.sql("select * from standby_loss").pl().to_dicts()
    assert len(fit) == 1
    row = fit[0]
    assert row["k_per_h"] == pytest.approx(k, rel=0.03)
    assert row["ua_w_per_k"] == pytest.approx(4 * cpk * k, rel=0.03)
    assert row["energy_ua_w_per_k"] == pytest.approx(4 * cpk * k, rel=0.05)
    assert row["half_life_h"] == pytest.approx(math.log(2) / k, rel=0.03)
    assert row["room_c"] == pytest.approx(20.0)
    model = con.sql("select capacity_wh_per_k, capacity_source from int_device_models").fetchall()
    assert model[0][0] == pytest.approx(4 * cpk, rel=0.01) and model[0][1] == "reference"
    con.close()


def test_ems_days_join_and_residuals(tmp_path: Path) -> None:
    samples = [(0, {})] + [(30 * i, {"comp": True, "mode": 32, "power": 451}) for i in range(1, 121)]
    samples += [(3630, {"comp": False, "mode": 0, "power": 451}), (3660, {"power": 1})]
    write_status(tmp_path, status_rows(MAC, samples))
    write_energy(tmp_path, MAC, [(T0.date(), 440, 0), (datetime(2026, 1, 4, tzinfo=UTC).date(), 10, 0)])
    con = warehouse.connect(_config(tmp_path))
    rows = con.sql("select day::varchar, compressor_wh, ems_heat_pump_wh, residual_heat_pump_wh "
                   "from energy_daily order by day").fetchall()
    con.close()
    assert rows[0] == ("2026-01-04", 0.0, 10.0, None)  # EMS-only day: no samples, kept
    assert rows[1][1] == pytest.approx(450 * 120 * 30 / 3600)
    assert rows[1][3] == pytest.approx(450.0 - 440.0)


# --- tariffs ------------------------------------------------------------------------------------


def test_tou_plan_rows_and_reference_prices() -> None:
    rows = tariff.tou_rows(load_capture("rest_device_tou_response.json"), "x")
    assert len(rows) == 12
    la = "America/Los_Angeles"
    # winter weekday 10:00 local, summer weekday 17:00 local (peak), summer Saturday 23:30
    assert tariff.tou_price(rows, datetime(2026, 1, 5, 18, tzinfo=UTC), la) == 0.36261
    assert tariff.tou_price(rows, datetime(2026, 7, 7, 0, tzinfo=UTC), la) == 0.50678
    assert tariff.tou_price(rows, datetime(2026, 7, 12, 6, 30, tzinfo=UTC), la) == 0.40378
    assert tariff.week_bit(datetime(2026, 7, 12)) == 128  # a Sunday
    assert tariff.week_bit(datetime(2026, 7, 11)) == 2  # a Saturday


def test_tou_tariff_prices_every_slot_like_the_reference(tmp_path: Path) -> None:
    samples = [(i * 300, {"power": 50}) for i in range(12 * 24 + 1)]  # one day, 5-min polls
    write_status(tmp_path, status_rows(MAC, samples, datetime(2026, 7, 6, 7, tzinfo=UTC)))
    (tmp_path / "tou").mkdir()
    plan = load_capture("rest_device_tou_response.json")
    (tmp_path / "tou" / f"{MAC}.json").write_text(json.dumps(plan))
    cfg = _config(tmp_path, polling_interval=300, tariff="tou", timezone="America/Los_Angeles")
    con = warehouse.connect(cfg)
    slots = con.sql("select slot_start, price_per_kwh, cost, total_wh from int_energy_slots").pl()
    daily = con.sql("select sum(cost) from efficiency_daily").fetchall()[0][0]
    con.close()
    rows = tariff.tou_rows(plan)
    assert slots.height == 96
    for r in slots.iter_rows(named=True):
        assert r["price_per_kwh"] == pytest.approx(tariff.tou_price(rows, r["slot_start"], cfg.timezone))
    peak = slots.filter(pl.col("price_per_kwh") == 0.50678).height
    assert peak == 5 * 4  # 16:00-21:00 local on a summer weekday
    assert daily == pytest.approx(slots["cost"].sum())


def test_csv_and_flat_tariffs(tmp_path: Path) -> None:
    samples = [(i * 300, {"power": 1000 if i < 12 else 50}) for i in range(25)]  # 2 h
    write_status(tmp_path, status_rows(MAC, samples))
    prices = tmp_path / "prices.csv"
    prices.write_text("start,price_per_kwh\n2026-01-04T00:00:00Z,0.10\n2026-01-05T01:00:00+00:00,0.30\n")
    con = warehouse.connect(_config(tmp_path, polling_interval=300, tariff="csv", price_csv=prices))
    by_price = dict(con.sql("select price_per_kwh, sum(total_wh) from int_energy_slots group by 1").fetchall())
    cost = con.sql("select sum(cost) from int_energy_slots").fetchall()[0][0]
    con.close()
    assert set(by_price) == {0.10, 0.30}
    assert cost == pytest.approx(by_price[0.10] / 1000 * 0.10 + by_price[0.30] / 1000 * 0.30)
    con = warehouse.connect(_config(tmp_path, polling_interval=300, price_per_kwh=0.2))
    total, cost = con.sql("select sum(total_wh), sum(cost) from efficiency_daily").fetchall()[0]
    con.close()
    assert cost == pytest.approx(total / 1000 * 0.2)


def test_csv_tariff_without_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    from navilink_etl.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="NAVILINK_PRICE_CSV"):
        warehouse.refresh(_config(tmp_path, tariff="csv"))
