"""The what-if twin against the simulator's ground truth (docs/metrics.md, "What would change").

One household simulated once per module (truth A, energy saver at 120 degF), plus the same seed
under each changed setting (truth B: same weather and draws, only the setting differs). The twin
is fitted on A's warehouse, backcasts A, and predicts each B.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from navilink_etl import warehouse
from navilink_etl.cli import app
from navilink_etl.config import NaviLinkConfig
from navilink_etl.physics import f_to_c
from navilink_etl.twin import whatif
from navilink_etl.twin.metrics import FIELDS, run_metrics
from navilink_etl.twin.replay import epoch_frame, replay, true_draws

from .twin_helpers import truth_frame, whatif_world

TZ = "America/Chicago"
START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 4
SEED = 22
BASE: dict[str, Any] = {"setpoint_f": 120.0, "mode": "energy_saver"}
SCENARIOS = {
    "setpoint +10": {"setpoint_f": 130.0},
    "setpoint -10": {"setpoint_f": 110.0},
    "heat pump only": {"mode": "heat_pump"},
    "electric": {"mode": "electric"},
    "shift 16:00-21:00": {"shift": "16:00-21:00"},
}
WEEKS = DAYS / 7.0
DELIVERY_C = f_to_c(105.0)



@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return whatif_world(tmp_path_factory.mktemp("whatif"), days=DAYS, seed=SEED, start=START, tz=TZ,
                        base=BASE, scenarios=SCENARIOS)


def _close(pred: float, true: float, rel: float, floor: float) -> bool:
    return abs(pred - true) <= max(rel * abs(true), floor)


def test_backcast_matches_the_measured_and_the_truth(world: dict[str, Any]) -> None:
    r = world["result"]
    measured, predicted, truth = r.backcast_measured, r.backcast_predicted, world["truth"]["A"]
    for ref in (measured, truth):
        assert _close(predicted["total_kwh"], ref["total_kwh"], 0.03, 0.0), (predicted, ref)
        assert _close(predicted["element_kwh"], ref["element_kwh"], 0.10, 0.3 * WEEKS), (predicted, ref)
    assert measured["element_kwh"] > 0.5  # the household needs the element now and then: a real test
    assert abs(predicted["cycles"] - measured["cycles"]) <= max(2, 0.2 * measured["cycles"])
    # the calibration folds what is left of the draw energy the twin does not replay into the COP
    # scale (1.8 % here; 2.5 % before the unseen draws were put back): no further
    assert r.fitted_params is not None and r.fitted_params.source == "device_model"
    assert abs(r.params.cop_factor - 1.0) <= abs(r.fitted_params.cop_factor - 1.0) + 0.02


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_whatif_predicts_truth_b(world: dict[str, Any], name: str) -> None:
    r = world["result"]
    sc = next(s for s in r.scenarios if s.name == name)
    p, t = sc.predicted, world["truth"][name]
    assert _close(p["total_kwh"], t["total_kwh"], 0.05, 0.0), (p, t)
    assert _close(p["element_kwh"], t["element_kwh"], 0.15, 0.5 * WEEKS), (p, t)
    assert _close(p["runout_min"], t["runout_min"], 0.20, 10.0 * WEEKS), (p, t)
    # peak-window kWh: 10 %, with the unseen draws put back where they happened (twin/unseen.py).
    # At -10 degF one 99-Wh sink draw right after a recovery, while the tank sat above its setpoint
    # (the energy field reads 0 to go), stays invisible and moves one recovery into the window:
    # +17 % (docs/metrics.md 6.1; +2.5 % with that draw added, +0.2 % with the true draws)
    assert _close(p["peak_kwh"], t["peak_kwh"], 0.20 if name == "setpoint -10" else 0.10, 0.05), (p, t)
    # the change itself points the right way (the answer a user acts on)
    base = world["truth"]["A"]["total_kwh"]
    assert (p["total_kwh"] - r.backcast_predicted["total_kwh"]) * (t["total_kwh"] - base) > 0


def test_bands_contain_the_prediction_and_follow_the_backcast_error(world: dict[str, Any]) -> None:
    r = world["result"]
    for sc in r.scenarios:
        for k in FIELDS:
            lo, hi = sc.band[k]
            v = sc.predicted[k]
            assert lo is not None and hi is not None and v is not None and lo <= v <= hi
        lo, hi = sc.band["total_kwh"]
        assert (hi - lo) / 2 >= max(r.errors["total_kwh"], 0.02) * sc.predicted["total_kwh"] - 1e-3


def test_partial_observability_costs_accuracy(world: dict[str, Any]) -> None:
    """The twin given the true draws and the true constants reproduces truth A (the replay is the
    simulator); the inferred draws miss energy (small draws hide in standby)."""
    import dataclasses

    r = world["result"]
    true_dev = truth_frame(world["root"] / "A", "devices").row(0, named=True)
    exact = dataclasses.replace(r.params, capacity_wh_per_k=true_dev["capacity_wh_per_k"],
                                ua_w_per_k=true_dev["ua_w_per_k"], cop_factor=true_dev["cop_scale"],
                                element_w=true_dev["element_w"])
    truth_draws = truth_frame(world["root"] / "A", "draws")
    run = replay(exact, r.inputs, draws=true_draws(truth_draws))
    m = run_metrics(run.steps, run.draws, world["price"], world["window"], DELIVERY_C)
    t = world["truth"]["A"]
    assert _close(m["total_kwh"], t["total_kwh"], 0.01, 0.0), (m, t)
    assert _close(m["element_kwh"], t["element_kwh"], 0.02, 0.05), (m, t)
    seen = r.inputs.draw_energy_wh / float(truth_draws["energy_wh"].sum())
    assert 0.7 < seen < 1.0  # some draw energy is not seen by the draws mart


def test_unseen_draws_are_put_back_where_they_happened(world: dict[str, Any]) -> None:
    """The draws the draws mart misses (short sink draws between polls) show as unexplained drops
    of the stored energy: every micro-draw the twin adds lies on a true draw (within a poll), and
    together they restore most of the missed draws' energy, in standby and while heating."""
    r = world["result"]
    con = warehouse.connect(world["cfg"])
    try:
        mart = con.sql("select epoch(draw_start) as s, epoch(draw_end) as e from draws").pl()
    finally:
        con.close()
    td = epoch_frame(truth_frame(world["root"] / "A", "draws"), ("start", "end"))
    seen_by_mart = [bool(((mart["s"] - 31.0 <= e) & (mart["e"] >= s)).any())
                    for s, e in td.select("start", "end").iter_rows()]
    missed = td.filter(~pl.Series(seen_by_mart))
    assert missed.height >= 3  # the household has draws the mart cannot see: a real test
    micro = [d for d in r.inputs.draws if d[3] == "unseen"]
    assert len(micro) >= missed.height - 2
    for start, dur, _lpm, _ in micro:  # no false draws: each lies on a true one
        near = td.filter((pl.col("start") <= start + dur + 30.0) & (pl.col("end") >= start - 30.0))
        assert near.height >= 1, start
    missed_wh = float(missed["energy_wh"].sum())
    assert 0.7 * missed_wh <= r.inputs.unseen_wh <= 1.1 * missed_wh, (r.inputs.unseen_wh, missed_wh)
    assert r.inputs.unseen_heating_wh > 0.0  # some found inside steady heating runs


def test_json_answer_has_the_issue_shape(world: dict[str, Any]) -> None:
    d = world["result"].to_dict()
    assert set(d) == {"device", "period", "backcast", "scenarios"}
    assert set(d["backcast"]) == {"measured", "predicted"}
    for m in (d["backcast"]["measured"], d["backcast"]["predicted"]):
        assert set(FIELDS) <= set(m)
    for s in d["scenarios"]:
        assert set(s) == {"name", "settings", "predicted", "band"}
        assert set(s["predicted"]) == set(FIELDS) and set(s["band"]) == set(FIELDS)
    orjson.dumps(d)


def _env(monkeypatch: pytest.MonkeyPatch, cfg: NaviLinkConfig) -> None:
    monkeypatch.setenv("NAVILINK_DATA_DIR", str(cfg.data_dir))
    monkeypatch.setenv("NAVILINK_TIMEZONE", TZ)
    monkeypatch.setenv("NAVILINK_POLLING_INTERVAL", "30")
    monkeypatch.setenv("NAVILINK_INLET_TEMPERATURE_F", str(cfg.inlet_temperature_f))


def test_cli_json_and_table(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, world["cfg"])
    runner = CliRunner()
    days = ["--from", "2026-01-06", "--to", "2026-01-07"]  # two of the days: the CLI is thin
    res = runner.invoke(app, ["whatif", *days, "--mode", "heat_pump", "--tariff", "flat:0.20", "--format", "json"])
    assert res.exit_code == 0, res.output
    d = orjson.loads(res.stdout)
    assert d["device"] == world["result"].device and len(d["scenarios"]) == 1
    assert d["period"] == {"from": "2026-01-06", "to": "2026-01-07", "timezone": TZ}
    sc = d["scenarios"][0]
    assert sc["settings"] == {"mode": "heat_pump"}
    assert sc["predicted"]["cost"] == pytest.approx(sc["predicted"]["total_kwh"] * 0.20, rel=1e-3)
    res = runner.invoke(app, ["whatif", *days, "--setpoint", "110"])
    assert res.exit_code == 0, res.output
    assert "What would change" in res.stdout and "setpoint 110 degF" in res.stdout
    assert "backcast" in res.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "00:11:22:33:44:55"], "unknown device 001122334455"),
    (["--setpoint", "160"], "outside the device's range 95-150 degF"),
    (["--shift", "16:00-16:00"], "start and end are equal"),
    (["--shift", "4pm-9pm"], "is not HH:MM-HH:MM"),
    (["--mode", "turbo"], "unknown DHW mode 'turbo'"),
    (["--tariff", "tou"], "no TOU plan saved"),
])
def test_cli_errors_name_the_setting(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                     args: list[str], message: str) -> None:
    _env(monkeypatch, world["cfg"])
    res = CliRunner().invoke(app, ["whatif", *args])
    assert res.exit_code == 2, res.output
    assert message in res.stderr


def test_a_later_period_spins_up_from_the_last_full_tank_before_it(world: dict[str, Any]) -> None:
    """The last two local days: the replay starts at the last full tank before them (the data has
    one), runs through the spin-up with the data's own draws, and counts only the period."""
    from datetime import date

    cfg, days = world["cfg"], (date(2026, 1, 7), date(2026, 1, 8))
    r = whatif(cfg, start=days[0], end=days[1], scenarios=[])
    assert r.inputs is not None and r.inputs.spin_from is not None
    t0, t1 = r.inputs.t0, r.inputs.t1
    assert t0 - 48 * 3600 <= r.inputs.spin_from < t0
    assert any(n.startswith("spin-up") for n in r.inputs.notes)
    steps = epoch_frame(truth_frame(world["root"] / "A", "steps"), ("t_start", "t_end"))
    truth = run_metrics(steps.filter((pl.col("t_start") >= t0) & (pl.col("t_start") < t1)),
                        epoch_frame(truth_frame(world["root"] / "A", "draws"), ("start", "end")),
                        world["price"], world["window"], DELIVERY_C)
    p = r.backcast_predicted
    for ref in (r.backcast_measured, truth):
        assert _close(p["total_kwh"], ref["total_kwh"], 0.03, 0.0), (p, ref)
        assert _close(p["element_kwh"], ref["element_kwh"], 0.10, 0.3 * 2 / 7), (p, ref)
    assert r.backcast_measured["total_kwh"] == pytest.approx(truth["total_kwh"], rel=0.03)  # same span
