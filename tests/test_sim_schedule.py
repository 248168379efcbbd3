"""simulate's changed settings: setpoint in degF, DHW mode by name, and the load-shift window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from navilink_etl.cli import app
from navilink_etl.errors import ConfigurationError
from navilink_etl.sim.control import Heater
from navilink_etl.sim.device import SimulatedDevice
from navilink_etl.sim.ledger import TruthLog
from navilink_etl.sim.schedule import LoadShift, heater_options, mode_number, setpoint_half_c

TZ = "America/Chicago"
START = datetime(2026, 1, 5, tzinfo=UTC)


def _at(day: int, hour: float) -> float:
    """Epoch of local (Chicago, UTC-6 in January) ``hour`` on 2026-01-``day``."""
    return datetime(2026, 1, day, tzinfo=UTC).timestamp() + (hour + 6.0) * 3600.0


def test_shift_phases_follow_the_local_clock() -> None:
    s = LoadShift.parse("16:00-21:00", TZ)
    assert [s.phase(_at(6, h)) for h in (13.9, 14.0, 15.99, 16.0, 20.99, 21.0)] == \
        ["normal", "preheat", "preheat", "hold", "hold", "normal"]
    assert s.next_change(_at(6, 10.0)) == pytest.approx(_at(6, 14.0))
    assert s.next_change(_at(6, 17.0)) == pytest.approx(_at(6, 21.0))
    # hold: no heating whatever the mode; preheat: aim at the device's maximum (65.5 degC)
    assert s.adjust(_at(6, 17.0), 49.0, 3) == (49.0, 0)
    assert s.adjust(_at(6, 15.0), 49.0, 1) == (65.5, 1)
    assert s.adjust(_at(6, 9.0), 49.0, 3) == (49.0, 3)
    night = LoadShift.parse("22:00-02:00", TZ)  # across midnight
    assert night.phase(_at(6, 23.0)) == "hold" and night.phase(_at(7, 1.5)) == "hold"
    assert night.phase(_at(7, 2.5)) == "normal" and night.phase(_at(6, 21.0)) == "preheat"


@pytest.mark.parametrize(("text", "message"), [
    ("16-21", "is not HH:MM-HH:MM"), ("25:00-21:00", "outside 00:00-24:00"),
    ("09:00-09:00", "start and end are equal"), ("00:00-23:30", "leaves no time to heat"),
])
def test_bad_shift_windows_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LoadShift.parse(text, TZ)


def test_settings_options_and_their_errors() -> None:
    assert setpoint_half_c(120.0) == 98 and setpoint_half_c(150.0) == 131
    assert mode_number("heat_pump") == 1 and mode_number("Energy-Saver") == 3 and mode_number(2) == 2
    opts = heater_options(130.0, "electric", "16:00-21:00", tz=TZ)
    assert opts["setpoint_half_c"] == 109 and opts["mode"] == 2 and isinstance(opts["schedule"], LoadShift)
    with pytest.raises(ConfigurationError, match="outside the device's range 95-150 degF"):
        setpoint_half_c(151.0)
    with pytest.raises(ConfigurationError, match="outside the device's range 100-150 degF"):
        heater_options(96.0, tz=TZ, min_half_c=76)
    with pytest.raises(ConfigurationError, match="use one of heat_pump, energy_saver"):
        mode_number("eco")


def _run(**opts: object) -> pl.DataFrame:
    truth = TruthLog("aabbccddeeff")
    dev = SimulatedDevice("aabbccddeeff", seed=7, start=START, truth=truth, ems_tz=TZ, **opts)
    dev.heater.advance_to(START.timestamp() + 2 * 86400.0)
    dev.heater.finish()
    steps = truth.frames()["steps"]
    local = pl.col("t_start").dt.convert_time_zone(TZ)
    return steps.with_columns((local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute()).alias("minute"))


def test_the_shifted_heater_preheats_and_does_not_heat_in_the_window() -> None:
    base, shifted = _run(setpoint_f=120), _run(setpoint_f=120, shift="16:00-21:00")
    heat = pl.col("elec_compressor_wh") + pl.col("elec_upper_wh") + pl.col("elec_lower_wh")
    in_window = pl.col("minute").is_between(16 * 60, 21 * 60, closed="left")
    assert shifted.filter(in_window).select(heat.sum()).item() == 0.0
    assert base.filter(in_window).select(heat.sum()).item() > 100.0  # the household draws at night
    at_16 = pl.col("minute") == 16 * 60 - 1
    hot = shifted.filter(at_16)["tank_mean_c"].mean()
    normal = base.filter(at_16)["tank_mean_c"].mean()
    assert isinstance(hot, float) and isinstance(normal, float) and hot > normal + 5.0
    assert shifted["tank_upper_c"].max() <= 65.5 + 0.5  # within the device's range
    # the same draws in both runs: only the setting differs
    assert base["draw_l"].sum() == pytest.approx(shifted["draw_l"].sum())


def test_setpoint_and_mode_reach_the_controller_and_the_truth() -> None:
    dev = SimulatedDevice("aabbccddeeff", seed=7, start=START, draws=None, setpoint_f=130, mode="heat_pump")
    assert isinstance(dev.heater, Heater)
    assert dev.heater.setpoint_half_c == 109 and dev.heater.mode == 1
    assert dev.heater.schedule is None


def test_simulate_with_the_same_seed_differs_only_by_the_settings(tmp_path: Path) -> None:
    from navilink_etl.sim.simulate import simulate

    common = {"days": 1, "seed": 3, "start": START, "ems_tz": TZ, "interval_s": 60}
    simulate(tmp_path / "a", **common)
    simulate(tmp_path / "b", **common, setpoint_f=110, mode="heat_pump", shift="17:00-20:00")

    def read(d: str, name: str) -> pl.DataFrame:
        return pl.read_parquet(tmp_path / d / "truth" / name / "**" / "*.parquet", hive_partitioning=False)

    da, db = read("a", "draws"), read("b", "draws")
    assert da.select("start", "end", "volume_l").equals(db.select("start", "end", "volume_l"))
    sa, sb = read("a", "steps"), read("b", "steps")
    assert set(sb["dhw_mode"].unique()) == {1} and set(sa["dhw_mode"].unique()) == {3}
    assert sb["setpoint_c"].unique().to_list() == [43.5]
    assert sb["elec_compressor_wh"].sum() != sa["elec_compressor_wh"].sum()


def test_cli_simulate_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAVILINK_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    help_text = runner.invoke(app, ["simulate", "--help"]).stdout
    assert "--setpoint" in help_text and "--mode" in help_text and "--shift" in help_text
    res = runner.invoke(app, ["simulate", "--days", "0.1", "--setpoint", "200"])
    assert res.exit_code == 2 and "outside the device's range" in res.stderr
    res = runner.invoke(app, ["simulate", "--days", "0.1", "--shift", "9-5"])
    assert res.exit_code == 2 and "HH:MM-HH:MM" in res.stderr
    res = runner.invoke(app, ["simulate", "--days", "0.25", "--start", "2026-01-05", "--setpoint", "125",
                              "--mode", "electric", "--shift", "16:00-21:00"])
    assert res.exit_code == 0, res.output
    steps = pl.read_parquet(tmp_path / "data" / "truth" / "steps" / "**" / "*.parquet", hive_partitioning=False)
    assert set(steps["dhw_mode"].unique()) == {2}
