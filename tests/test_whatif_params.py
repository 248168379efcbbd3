"""The twin's parameters and prices without a simulation: which fit it reads, and the tariff."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import orjson
import polars as pl
import pytest

from navilink_etl.config import NaviLinkConfig
from navilink_etl.errors import ConfigurationError
from navilink_etl.tariff import tou_price, tou_rows
from navilink_etl.twin.inputs import draw_outlet_c, full_tank_start
from navilink_etl.twin.metrics import Window
from navilink_etl.twin.params import configured_inlet_c, load_params
from navilink_etl.twin.tariff import price_function

CAPTURE = Path(__file__).parent / "fixtures" / "navilink-capture" / "rest_device_tou_response.json"
MAC = "aabbccddeeff"


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create table settings as select 12.5 as inlet_c")
    con.execute("create table int_device_models as select 'aabbccddeeff' as device, 2.3 as ua_w_per_k, "
                "280.0 as capacity_wh_per_k, 1.05 as cop_factor")
    con.execute("create table int_intervals (device varchar, interval_start timestamptz, element_on boolean, "
                "power_source varchar, element_w double)")
    return con


def test_without_device_model_the_warehouse_fits_and_the_rating_are_used() -> None:
    con = _con()
    p = load_params(con, MAC)
    assert (p.source, p.ua_w_per_k, p.capacity_wh_per_k, p.cop_factor, p.inlet_c) == \
        ("int_device_models", 2.3, 280.0, 1.05, 12.5)
    assert p.element_w == 5000.0 and "not measured" in p.notes[0]
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    con.executemany("insert into int_intervals values (?, ?, ?, ?, ?)",
                    [(MAC, t0 + timedelta(minutes=i), True, "next", 4800.0 + i) for i in range(5)]
                    + [(MAC, t0, True, "rated", 5000.0), (MAC, t0, False, "next", 0.0)])
    assert load_params(con, MAC).element_w == 4802.0
    with pytest.raises(ConfigurationError, match="no fitted model for device 001122334455"):
        load_params(con, "001122334455")


def test_device_model_wins_with_its_latest_fit_and_monthly_inlet() -> None:
    con = _con()
    con.execute("""create table device_model as select * from (values
        ('aabbccddeeff', date '2026-01-01', 290.0, 3.0, 2.0, 0.1, 0.98, 0.02, 4900.0, 20.0, 11.0, 0.5, 10, 4, 30),
        ('aabbccddeeff', date '2026-02-01', 285.0, 3.0, 2.2, 0.1, 1.02, 0.02, 4950.0, 20.0, 10.0, 0.5, 12, 5, 40))
        t(device, as_of, capacity_wh_per_k, capacity_wh_per_k_se, ua_w_per_k, ua_w_per_k_se, cop_factor,
          cop_factor_se, element_w, element_w_se, inlet_c, inlet_c_se, n_cycles, n_standby_windows, n_draws)""")
    con.execute("create table device_inlet_monthly as select 'aabbccddeeff' as device, "
                "date '2026-01-01' as month, 9.0 as inlet_c, 20 as n_draws")
    p = load_params(con, MAC)
    assert (p.source, p.capacity_wh_per_k, p.ua_w_per_k, p.cop_factor, p.element_w, p.inlet_c) == \
        ("device_model", 285.0, 2.2, 1.02, 4950.0, 10.0)
    assert p.inlet_at_month(1) == 9.0 and p.inlet_at_month(7) == 10.0
    assert p.se["ua_w_per_k"] == 0.1 and p.se["element_w"] == 20.0


def test_a_configured_inlet_is_capped_by_the_lowest_draw_reading(tmp_path: Path) -> None:
    """The lower thermistor never reads below the inlet: a configured inlet is used, capped month by
    month by its lowest reading in a draw (away from gaps); the fitted monthly inlet, which
    extrapolates below those readings, is used only without a configured one."""
    con = _con()
    con.execute("""create table device_model as select 'aabbccddeeff' as device, date '2026-02-01' as as_of,
        285.0 as capacity_wh_per_k, 2.2 as ua_w_per_k, 1.02 as cop_factor, 4950.0 as element_w,
        12.0 as inlet_c, 0.5 as inlet_c_se""")
    con.execute("create table device_inlet_monthly as select * from (values "
                "('aabbccddeeff', date '2026-01-01', 8.5), ('aabbccddeeff', date '2026-02-01', 12.0)) "
                "t(device, month, inlet_c)")
    con.execute("create table int_draw_inlet as select * from (values "
                "('aabbccddeeff', date '2026-01-10', 9.0, false), ('aabbccddeeff', date '2026-01-11', 7.0, true), "
                "('aabbccddeeff', date '2026-02-03', 12.5, false)) t(device, local_day, lower_min_c, at_gap)")
    p = load_params(con, MAC, inlet_c=10.0)
    assert (p.inlet_c, p.inlet_at_month(1), p.inlet_at_month(2), p.inlet_at_month(7)) == (10.0, 9.0, 10.0, 10.0)
    assert "lowest reading in a draw in month 1: 9.0 degC used" in p.notes[0] and len(p.notes) == 1
    fitted = load_params(con, MAC)  # none configured: the fit
    assert (fitted.inlet_at_month(1), fitted.inlet_at_month(2)) == (8.5, 12.0)
    assert configured_inlet_c(NaviLinkConfig(data_dir=tmp_path)) is None  # the default is no measurement
    assert configured_inlet_c(NaviLinkConfig(data_dir=tmp_path, inlet_temperature_f=50.0)) == 10.0


def test_tou_prices_match_the_reference_lookup(tmp_path: Path) -> None:
    plan = orjson.loads(CAPTURE.read_bytes())
    rows = tou_rows(plan, MAC)
    tz = "America/Los_Angeles"
    cfg = NaviLinkConfig(data_dir=tmp_path, timezone=tz)
    price, label = price_function(cfg, MAC, f"tou:{CAPTURE}")
    assert label.startswith("TOU")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    times = [start + timedelta(minutes=37 * k) for k in range(4000)]  # every season, day and hour
    got = price(np.array([t.timestamp() for t in times]))
    want = np.array([tou_price(rows, t, tz) or np.nan for t in times])
    assert np.allclose(got, want, equal_nan=True)
    # the device's saved plan under data/tou/ is the default for --tariff tou
    (tmp_path / "tou").mkdir()
    shutil.copy(CAPTURE, tmp_path / "tou" / f"{MAC}.json")
    saved, _ = price_function(cfg, MAC, "tou")
    assert np.allclose(saved(np.array([t.timestamp() for t in times])), want, equal_nan=True)


def test_flat_and_csv_prices_and_their_errors(tmp_path: Path) -> None:
    cfg = NaviLinkConfig(data_dir=tmp_path, timezone="UTC", price_per_kwh=0.11)
    t = np.array([datetime(2026, 1, 5, h, tzinfo=UTC).timestamp() for h in (0, 12, 23)])
    assert price_function(cfg, MAC)[0](t).tolist() == [0.11] * 3
    assert price_function(cfg, MAC, "flat:0.3")[0](t).tolist() == [0.3] * 3
    csv = tmp_path / "p.csv"
    csv.write_text("start,price_per_kwh\n2026-01-05T06:00:00Z,0.2\n2026-01-05T18:00:00Z,0.4\n")
    got = price_function(cfg, MAC, f"csv:{csv}")[0](t)
    assert np.isnan(got[0]) and got[1:].tolist() == [0.2, 0.4]
    for bad, msg in (("flat:cheap", "flat price must be"), ("gas", "unknown tariff"),
                     ("tou", "no TOU plan saved"), (f"tou:{tmp_path / 'none.json'}", "cannot read")):
        with pytest.raises(ConfigurationError, match=msg):
            price_function(cfg, MAC, bad)


def test_peak_window_uses_local_time_and_may_cross_midnight() -> None:
    day = date(2026, 1, 6)
    hours = np.array([datetime(day.year, day.month, day.day, h, 30, tzinfo=UTC).timestamp() for h in range(24)])
    evening = Window(16 * 60, 21 * 60, "America/Chicago").contains(hours)  # UTC-6
    assert np.flatnonzero(evening).tolist() == [0, 1, 2, 22, 23]
    night = Window(22 * 60, 2 * 60, "UTC").contains(hours)
    assert np.flatnonzero(night).tolist() == [0, 1, 22, 23]


def test_standard_scenarios_stay_in_the_device_range() -> None:
    from navilink_etl.twin.whatif import standard_scenarios

    names = [s.name for s in standard_scenarios(98, tou=True)]  # 120 degF
    assert names == ["setpoint 110 degF", "heat pump only", "shift 16:00-21:00"]
    assert [s.setpoint_f for s in standard_scenarios(98, tou=False)] == [110, None]
    low = standard_scenarios(72, tou=False)  # 97 degF: 10 lower is below the 95 degF floor
    assert [s.setpoint_f for s in low] == [95, None]
    assert [s.name for s in standard_scenarios(70, tou=False)] == ["heat pump only"]  # at the floor


def test_initial_profile_takes_the_reported_mean_in_the_nodes_the_thermistors_do_not_see() -> None:
    from navilink_etl.twin.inputs import initial_profile

    flat = initial_profile(47.3, 46.0)
    assert flat[2] == 46.0 and flat[8] == 47.3 and min(flat) == 46.0 and max(flat) == 47.3
    colder = initial_profile(47.3, 46.0, mean_c=45.4, floor_c=11.0)  # cold water settled at the bottom
    assert sum(colder) / 12 == pytest.approx(45.4)
    assert colder[2:] == flat[2:] and colder[0] < 46.0
    hotter = initial_profile(47.3, 46.0, mean_c=47.0)  # hotter above the upper thermistor
    assert sum(hotter) / 12 == pytest.approx(47.0)
    assert hotter[:9] == flat[:9] and hotter[11] > 47.3
    floored = initial_profile(47.3, 46.0, mean_c=20.0, floor_c=11.0)  # never below the inlet
    assert min(floored) == pytest.approx(11.0)


def test_draw_outlet_takes_the_upper_reading_only_while_an_element_ran() -> None:
    assert draw_outlet_c(46.1, 47.3, True) == 47.3  # the element held the top: the 3-h estimate lags
    assert draw_outlet_c(49.1, 48.9, True) == 49.1  # the upper thermistor cooled below the estimate
    assert draw_outlet_c(46.1, 47.3, False) == 46.1  # no element: the estimate
    assert draw_outlet_c(46.1, None, True) == 46.1


def test_full_tank_start_is_the_last_ended_recovery_with_nothing_to_go_before_the_period() -> None:
    a = 100_000.0
    t = [a - 7200.0 + 30.0 * i for i in range(480)]  # 2 h before the period, 2 h in it
    heating = [(a - 5000.0 <= x < a - 4000.0) or (a - 2000.0 <= x < a - 1500.0) or (a + 600.0 <= x < a + 900.0)
               for x in t]
    to_go = [0.0 if x >= a - 4000.0 else 300.0 for x in t]
    frame = pl.DataFrame({"t": t, "heating": heating, "drawing": [False] * len(t), "energy_to_setpoint_wh": to_go,
                          "tank_upper_c": [49.0] * len(t), "tank_lower_c": [48.5] * len(t)})
    first_end = min(x for x in t if x >= a - 4000.0)
    second_end = min(x for x in t if x >= a - 1500.0)
    assert full_tank_start(frame, a) == second_end  # the last one before the period, not the one in it
    drawing = frame.with_columns(drawing=pl.col("t") == second_end)
    assert full_tank_start(drawing, a) == first_end  # a draw at the end: the tank is not known full
    assert full_tank_start(frame.with_columns(energy_to_setpoint_wh=pl.lit(120.0)), a) is None
    assert full_tank_start(frame, a - 4500.0) is None  # nothing ended before the period
