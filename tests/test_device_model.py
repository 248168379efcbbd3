"""The fitted device model (``device_model``, ``device_model_history``, ``device_inlet_monthly``)
against simulated heaters with known constants (docs/metrics.md 2.13 and section 4).

Three heaters simulated once per module: a 65-gal basement unit whose heat pump is 15 % better
than the map, a 50-gal unit on 208 V in conditioned space 15 % worse on the newer firmware (which
reports the energy fields' reference), both in Energy Saver for ten days, and a short
Electric-mode run (element-only heating).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest

from navilink_etl.config import NaviLinkConfig

from .warehouse_helpers import refreshed, rows

TZ = "America/Chicago"
START = datetime(2026, 3, 2, 6, tzinfo=UTC)  # Monday, local midnight
HEATERS: dict[str, dict[str, Any]] = {
    "better_65": {"seed": 1, "days": 10, "volume_gal": 65, "location": "basement",
                  "cop_scale": 1.15},
    "worse_50": {"seed": 2, "days": 10, "volume_gal": 50, "location": "conditioned",
                 "voltage_v": 208, "cop_scale": 0.85, "firmware": "2025-10"},
    "electric": {"seed": 3, "days": 2.5, "volume_gal": 80, "location": "basement", "mode": 2},
}
MODEL_COLUMNS = [
    "device", "as_of", "capacity_wh_per_k", "capacity_wh_per_k_se", "ua_w_per_k", "ua_w_per_k_se",
    "cop_factor", "cop_factor_se", "element_w", "element_w_se", "inlet_c", "inlet_c_se",
    "n_cycles", "n_standby_windows", "n_draws",
]
# (fitted column, truth column, relative tolerance: docs/metrics.md section 4)
TARGETS = [("ua_w_per_k", "ua_w_per_k", 0.10), ("capacity_wh_per_k", "capacity_wh_per_k", 0.05),
           ("cop_factor", "cop_scale", 0.07), ("element_w", "element_w", 0.05)]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    from navilink_etl.sim.simulate import simulate

    data = tmp_path_factory.mktemp("fit") / "data"
    for opts in HEATERS.values():
        simulate(data, devices=1, interval_s=30, loss=0.05, start=START, ems_tz=TZ, **opts)
    cfg = NaviLinkConfig(data_dir=data, polling_interval=30, timezone=TZ)
    yield from refreshed(cfg)


def fitted(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """device_model beside the truth (``t_`` columns), keyed by the heater's name in HEATERS."""
    got = rows(con, """
        select m.*, t.seed, t.capacity_wh_per_k as t_capacity_wh_per_k,
            t.ua_w_per_k as t_ua_w_per_k, t.element_w as t_element_w, t.cop_scale as t_cop_scale
        from device_model as m join src_truth_devices as t using (device)""")
    # simulate() seeds its first device with seed * 1_000_003
    names = {opts["seed"] * 1_000_003: name for name, opts in HEATERS.items()}
    out = {names[r["seed"]]: r for r in got}
    assert set(out) == set(HEATERS), got
    return out


def test_cop_scale_multiplies_the_maps_cop_not_the_compressor_input() -> None:
    from navilink_etl.cop import hp_performance
    from navilink_etl.sim.device import SimulatedDevice

    devices = [SimulatedDevice("aa", seed=7, start=START, cop_scale=s) for s in (1.0, 1.3)]
    (p1, cop1), (p2, cop2) = (d.heater._hp_perf() for d in devices)
    assert p1 == p2 and cop2 == pytest.approx(1.3 * cop1, rel=1e-12)
    assert devices[1].device_row()["cop_scale"] == 1.3
    heater = devices[1].heater
    heater.cop_scale = 1.0  # a plain attribute: a run may change it, from the next step on
    heater.t += heater.step_s
    assert heater._hp_perf()[1] == hp_performance(heater.tank.hp_map_c, heater.ambient_c)[1]


def test_truth_carries_the_device_specific_element_power(sim: duckdb.DuckDBPyConnection) -> None:
    got = rows(sim, "select voltage_v, element_w, cop_scale from src_truth_devices")
    assert len(got) == len(HEATERS)
    for r in got:
        nameplate = 5000.0 if r["voltage_v"] == 240 else 3755.0
        assert r["element_w"] != nameplate  # the Heater's own power (line-voltage spread)
        assert 0.97 * nameplate <= r["element_w"] <= 1.04 * nameplate
    assert sorted(r["cop_scale"] for r in got) == [0.85, 1.0, 1.15]
    # what the truth says the elements drew is that power
    steps = rows(sim, """
        select d.element_w, sum(s.elec_upper_wh + s.elec_lower_wh) / sum(s.element_s) * 3600 as w
        from src_truth_steps as s join src_truth_devices as d using (device)
        where s.element_s > 0 group by all""")
    assert steps and all(r["w"] == pytest.approx(r["element_w"], rel=1e-6) for r in steps)


def test_device_model_has_one_row_per_device_and_the_agreed_columns(
        sim: duckdb.DuckDBPyConnection) -> None:
    assert sim.sql("select * from device_model").columns == MODEL_COLUMNS
    got = rows(sim, "select device, count(*) as n from device_model group by device")
    assert len(got) == len(HEATERS) and all(r["n"] == 1 for r in got)
    last = rows(sim, """select m.as_of, max(s.received_at) as last_sample
                        from device_model as m join stg_status as s using (device) group by all""")
    # the last sample used: the last one that starts an interval (its successor ends it)
    assert len(last) == len(HEATERS)
    assert all(0 < (r["last_sample"] - r["as_of"]).total_seconds() <= 90 for r in last), last


@pytest.mark.parametrize("name", ["better_65", "worse_50"])
def test_fitted_parameters_within_targets(sim: duckdb.DuckDBPyConnection, name: str) -> None:
    r = fitted(sim)[name]
    assert r["n_cycles"] >= 5 and r["n_standby_windows"] >= 5, r
    for column, truth, rel in TARGETS:
        assert r[column] == pytest.approx(r[f"t_{truth}"], rel=rel), (column, r)


@pytest.mark.parametrize("name", ["better_65", "worse_50"])
def test_truth_lies_within_three_standard_errors(sim: duckdb.DuckDBPyConnection,
                                                 name: str) -> None:
    r = fitted(sim)[name]
    for column, truth, _ in TARGETS:
        se = r[f"{column}_se"]
        assert se is not None and se > 0, (column, r)
        assert abs(r[column] - r[f"t_{truth}"]) <= 3 * se, (column, r)
        assert se < 0.05 * abs(r[column]), (column, r)  # and the error is useful, not vast


def test_element_only_heating_gives_the_element_power(sim: duckdb.DuckDBPyConnection) -> None:
    r = fitted(sim)["electric"]
    assert r["element_w"] == pytest.approx(r["t_element_w"], rel=0.005), r
    assert abs(r["element_w"] - r["t_element_w"]) <= 3 * r["element_w_se"], r
    # no heat-pump cycle: the map is not scaled, and nothing claims it was fitted
    assert r["n_cycles"] == 0 and r["cop_factor"] == 1.0 and r["cop_factor_se"] is None, r


def test_inlet_estimate_from_draws_is_close(sim: duckdb.DuckDBPyConnection) -> None:
    got = rows(sim, """
        with t as (select device, date_trunc('month', timezone('America/Chicago', t_start)) as month,
                       avg(inlet_c) as inlet_c from src_truth_steps group by all)
        select m.device, m.month, m.inlet_c, m.n_draws, t.inlet_c as truth
        from device_inlet_monthly as m join t on t.device = m.device and t.month = m.month""")
    assert len(got) >= 2
    for r in got:
        assert r["n_draws"] >= 3, r
        # the endpoint of the lowest lower-thermistor readings: within 1.5 K for these 50-65 gal
        # tanks in a basement or conditioned room (the mean of the lowest tenth read 1.9 K
        # high; 80-gal tanks stay biased high, docs/metrics.md 2.13)
        assert abs(r["inlet_c"] - r["truth"]) <= 1.5, r
    model = fitted(sim)
    for name in ("better_65", "worse_50"):
        assert model[name]["n_draws"] >= 3 and model[name]["inlet_c_se"] is not None, model[name]
    # in Electric mode the lower element heats the incoming water: no estimate rather than a bad one
    assert model["electric"]["n_draws"] == 0 and model["electric"]["inlet_c"] is None


def test_history_has_one_row_per_iso_week_and_adds_up(sim: duckdb.DuckDBPyConnection) -> None:
    hist = rows(sim, "select * from device_model_history order by device, week")
    assert sim.sql("select * from device_model_history").columns == [
        MODEL_COLUMNS[0], "week", *MODEL_COLUMNS[1:]]
    keys = [(r["device"], r["week"]) for r in hist]
    assert len(keys) == len(set(keys)) and all(r["week"].isoweekday() == 1 for r in hist)
    weeks_with_data = rows(sim, """select distinct device, cast(date_trunc('week', local_day) as date)
                                   as week from int_day_energy where last_sample_at is not null""")
    assert {(r["device"], r["week"]) for r in weeks_with_data} == set(keys)
    model = {r["device"]: r for r in rows(sim, "select * from device_model")}
    for device, m in model.items():
        weeks = [r for r in hist if r["device"] == device]
        assert sum(r["n_cycles"] for r in weeks) == m["n_cycles"]
        assert sum(r["n_standby_windows"] for r in weeks) == m["n_standby_windows"]
        assert max(r["as_of"] for r in weeks) == m["as_of"]
    # each week's own fit lands on the same truth (a drifting parameter would show here)
    truth = {r["device"]: r for r in rows(sim, "select * from src_truth_devices")}
    fitted_weeks = [r for r in hist if r["n_cycles"] >= 3]
    assert len(fitted_weeks) >= 3
    for r in fitted_weeks:
        assert r["cop_factor"] == pytest.approx(truth[r["device"]]["cop_scale"], rel=0.07), r
        assert abs(r["cop_factor"] - truth[r["device"]]["cop_scale"]) <= 3 * r["cop_factor_se"], r
    for r in (r for r in hist if r["n_standby_windows"] >= 2):
        assert r["ua_w_per_k"] == pytest.approx(truth[r["device"]]["ua_w_per_k"], rel=0.10), r
