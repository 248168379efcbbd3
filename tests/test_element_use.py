"""element_use against the simulator's ground truth: why each element ran, and how much of it a
setting could have avoided (the same household re-simulated in heat-pump-only mode).

One scenario per cause (all but unknown), 2 days each at a 30 s poll with 5 % of replies lost, simulated once per
module; the counterfactuals run the plant alone (truth only).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl
import pytest

from navilink_etl.config import NaviLinkConfig
from navilink_etl.sim import counterfactual
from navilink_etl.sim.simulate import device_mac
from navilink_etl.sim.truth import ELEMENT_CAUSES

from .warehouse_helpers import refreshed, rows

TZ = "America/Chicago"
START = datetime(2026, 1, 5, tzinfo=UTC)  # winter: the garage heater meets its lockout
DAYS = 2
RAISE_AT = (START + timedelta(hours=36)).timestamp()  # a local-morning setpoint raise, 45 -> 60 degC
SCENARIOS: dict[str, dict[str, Any]] = {
    "cold_garage": {"seed": 21, "location": "garage"},
    "electric": {"seed": 22, "mode": 2},
    "high_demand": {"seed": 23, "mode": 4, "draws": "doe-high"},
    "saver_heavy_draws": {"seed": 24, "mode": 3, "draws": "doe-high"},
    "setpoint_raise": {"seed": 25, "mode": 3, "setpoint_half_c": 90,
                       "plan": [(RAISE_AT, "setpoint_half_c", 120)]},
    "anti_legionella": {"seed": 26, "mode": 1, "setpoint_half_c": 100, "anti_legionella_days": 1},
    # away in January with the tank already near freezing: Vacation heats only to protect it
    "freeze": {"seed": 27, "location": "garage", "initial_c": 5.9, "draws": "none",
               "plan": [(START.timestamp(), "vacation_days", 5)]},
}
SIM_OPTIONS = {"start": START, "ems_tz": TZ}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    from navilink_etl.sim.simulate import simulate

    data = tmp_path_factory.mktemp("element_use") / "data"
    for opts in SCENARIOS.values():
        simulate(data, devices=1, days=DAYS, interval_s=30, loss=0.05, **SIM_OPTIONS, **opts)
    cfg = NaviLinkConfig(data_dir=data, polling_interval=30, timezone=TZ)
    yield from refreshed(cfg)


def mac(name: str) -> str:
    return device_mac(SCENARIOS[name]["seed"], 0)


# Each true minute with element energy, with the cause of the element_use run overlapping it most.
ATTRIBUTED = """
with t as (select device, t_start, t_end, elec_upper_wh + elec_lower_wh as wh, elec_element_cause
           from src_truth_steps where elec_upper_wh + elec_lower_wh > 0),
o as (
    select t.*, e.cause,
        epoch(least(t.t_end, e.run_end) - greatest(t.t_start, e.run_start)) as overlap_s
    from t left join element_use as e
        on e.device = t.device and e.run_start < t.t_end and e.run_end > t.t_start
)
select device, t_start, any_value(wh) as wh, any_value(elec_element_cause) as true_cause,
    arg_max(cause, overlap_s) as cause
from o group by device, t_start
"""


def test_truth_records_each_scenarios_cause(sim: duckdb.DuckDBPyConnection) -> None:
    """The controller's own record: every scenario exercises the cause it is named for."""
    expected = {"cold_garage": "cold_lockout", "electric": "mode_electric",
                "high_demand": "mode_high_demand", "saver_heavy_draws": "demand",
                "setpoint_raise": "setpoint_raise", "anti_legionella": "anti_legionella",
                "freeze": "freeze_protection"}
    for name, cause in expected.items():
        steps = sim.sql(f"select * from src_truth_steps where device = '{mac(name)}'").pl()
        causes = steps.filter(pl.col("elec_upper_wh") + pl.col("elec_lower_wh") > 0)
        assert causes["elec_element_cause"].null_count() == 0, name
        assert set(causes["elec_element_cause"].unique()) <= set(ELEMENT_CAUSES), name
        assert cause in causes["elec_element_cause"].to_list(), (name, cause)
        idle = steps.filter(pl.col("elec_upper_wh") + pl.col("elec_lower_wh") == 0)
        assert idle["elec_element_cause"].null_count() == idle.height, name


def test_element_use_rows_are_consistent(sim: duckdb.DuckDBPyConnection) -> None:
    got = rows(sim, "select * from element_use")
    assert {r["device"] for r in got} == {mac(n) for n in SCENARIOS}
    for r in got:
        assert r["cause"] in ELEMENT_CAUSES, r
        assert r["run_start"] < r["run_end"] and r["element_wh"] > 0, r
        assert 0 <= r["avoidable_wh"] <= r["element_wh"], r
        if r["cause"] in ("cold_lockout", "freeze_protection", "anti_legionella", "unknown"):
            assert r["avoidable_wh"] == 0, r
        assert r["evidence"]["dhw_mode"] in (1, 2, 3, 4, 5, 6), r
    # the runs add up to the element energy of the daily view (cost likewise, element_cost)
    day = rows(sim, """select sum(element_wh) as wh, sum(element_cost) as cost from efficiency_daily""")[0]
    runs = rows(sim, "select sum(element_wh) as wh, sum(cost) as cost from element_use")[0]
    assert runs["wh"] == pytest.approx(day["wh"], rel=1e-9)
    assert runs["cost"] == pytest.approx(day["cost"], rel=1e-9)


def test_at_least_95_percent_of_element_kwh_carry_the_true_cause(
        sim: duckdb.DuckDBPyConnection) -> None:
    got = pl.DataFrame(rows(sim, ATTRIBUTED))
    right = got.filter(pl.col("cause") == pl.col("true_cause"))["wh"].sum()
    share = right / got["wh"].sum()
    by_cause = got.group_by("true_cause").agg(
        pl.col("wh").sum() / 1000, ((pl.col("cause") == pl.col("true_cause")) * pl.col("wh")).sum()
        / pl.col("wh").sum())
    print(f"\nelement kWh with the true cause: {100 * share:.1f} %\n{by_cause}")
    assert set(got["true_cause"].unique()) >= set(ELEMENT_CAUSES) - {"unknown"}
    assert share >= 0.95


def test_avoidable_kwh_within_10_percent_of_the_counterfactual(
        sim: duckdb.DuckDBPyConnection) -> None:
    ours = {r["device"]: r["wh"] for r in rows(
        sim, "select device, sum(avoidable_wh) as wh from element_use group by device")}
    truth_total = ours_total = 0.0
    for name, opts in SCENARIOS.items():
        rest = {k: v for k, v in opts.items() if k != "seed"}
        actual = sim.sql(f"select * from src_truth_steps where device = '{mac(name)}'").pl()
        cf = counterfactual.heat_pump_only(seed=opts["seed"], days=DAYS, **SIM_OPTIONS, **rest)
        true_wh = counterfactual.avoidable_wh(actual, cf["steps"])
        print(f"{name}: avoidable ours {ours.get(mac(name), 0) / 1000:.2f} kWh, "
              f"counterfactual {true_wh / 1000:.2f} kWh")
        if true_wh >= 500:  # each scenario that wastes something: the same 10 %
            assert ours.get(mac(name), 0.0) == pytest.approx(true_wh, rel=0.10), name
        else:
            assert ours.get(mac(name), 0.0) <= 500, name
        truth_total += true_wh
        ours_total += ours.get(mac(name), 0.0)
    print(f"total: ours {ours_total / 1000:.2f} kWh, counterfactual {truth_total / 1000:.2f} kWh")
    assert truth_total > 5000  # the scenarios do waste energy
    assert ours_total == pytest.approx(truth_total, rel=0.10)


def test_counterfactual_reproduces_the_simulated_run(sim: duckdb.DuckDBPyConnection) -> None:
    """simulate_truth rebuilds the very heater simulate() ran (same element energy)."""
    opts = {k: v for k, v in SCENARIOS["electric"].items() if k != "seed"}
    again = counterfactual.simulate_truth(seed=SCENARIOS["electric"]["seed"], days=DAYS,
                                          **SIM_OPTIONS, **opts)["steps"]
    stored = sim.sql(f"select * from src_truth_steps where device = '{mac('electric')}'").pl()
    for col in ("elec_upper_wh", "elec_lower_wh", "draw_wh"):
        assert again[col].sum() == pytest.approx(stored[col].sum(), rel=1e-6), col


def test_report_section_and_tile_read_the_marts(sim: duckdb.DuckDBPyConnection) -> None:
    from navilink_etl.report import charts, summary
    from navilink_etl.report.data import default_period, load
    from navilink_etl.report.units import Units

    dev = mac("cold_garage")
    period = default_period(sim, dev, None, None)
    assert period is not None
    data = load(sim, dev, period[0], period[1], TZ)
    eu = rows(sim, f"select cause, sum(element_wh) as wh, sum(avoidable_cost) as ac, "
                   f"sum(cost) as cost from element_use where device = '{dev}' group by cause")
    table = {r[0]: r for r in summary.element_cause_table(data).rows}
    assert {charts.CAUSE_LABEL[r["cause"]] for r in eu} == set(table)
    for r in eu:
        assert table[charts.CAUSE_LABEL[r["cause"]]][2] == f"{r['wh'] / 1000:.2f}"
    s = summary.summarize(data)
    assert s.element_cost == pytest.approx(sum(r["cost"] for r in eu), rel=1e-9)
    tile = next(t for t in summary.tiles(s, Units.of("F")) if t.label == "Element energy")
    assert tile.note.startswith(f"costing ${s.element_cost:,.2f}, $")
    assert charts.title_of(charts.element_causes(data.element_use, tz=TZ)) == "Why the element ran"
