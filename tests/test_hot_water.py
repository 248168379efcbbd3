"""hot_water and runouts against the simulator's draws (truth/draws: the lowest outlet
temperature and the litres drawn below 105 degF of each draw)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from navilink_etl import warehouse
from navilink_etl.sim.simulate import simulate
from tests.doctor_data import START, TZ, HeavyDraws, config_for

DAYS = 8
DELIVERY_C = (105 - 32) / 1.8


@pytest.fixture(scope="module")
def heavy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A 50-gal heater in Heat Pump mode at 50 degC with heavy draws: some run out, some not."""
    data = tmp_path_factory.mktemp("heavy") / "data"
    simulate(data, days=DAYS, interval_s=60, seed=5, start=START, ems_tz=TZ, volume_gal=50,
             mode=1, setpoint_half_c=100, draws=HeavyDraws(5, START.timestamp()))
    cfg = config_for(data, 60)
    warehouse.refresh(cfg)
    con = warehouse.connect(cfg)
    yield con
    con.close()


def _matched(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every true draw with the run-out found during it (null: none)."""
    return con.sql("""
        select t.start, t.outlet_min_c, t.below_105f_l / 3.785 as short_gal,
               r.start as found, r.gallons_short
        from src_truth_draws as t
        left join runouts as r on r.device = t.device and r.start < t."end" + interval 2 minutes
             and r.draw_end > t.start
        order by t.start""").pl()


def test_run_outs_match_the_true_draws(heavy: duckdb.DuckDBPyConnection) -> None:
    m = _matched(heavy)
    cold = m.filter(pl.col("outlet_min_c") < DELIVERY_C - 3)  # clearly ran out
    hot = m.filter(pl.col("outlet_min_c") > DELIVERY_C + 2)  # clearly did not
    assert cold.height >= 3 and hot.height >= 3  # the scenario has both
    assert cold["found"].null_count() == 0, cold  # every clear run-out is found
    assert hot["found"].null_count() == hot.height, hot  # no false run-out
    # gallons short: the tank water really drawn below 105 degF, within 30 % over these draws
    total_true = cold["short_gal"].sum()
    total_found = cold["gallons_short"].sum()
    assert abs(total_found - total_true) <= 0.3 * total_true, (total_found, total_true)
    # a run-out starts where the truth's below-105 water began: duration x flow matches above,
    # and it never starts before the draw or ends after it
    found = heavy.sql("select * from runouts").pl()
    assert (found["runout_start"] >= found["start"]).all()
    assert (found["duration_s"] > 0).all()


def test_gallons_available_follow_the_tank(heavy: duckdb.DuckDBPyConnection) -> None:
    hw = heavy.sql("select * from hot_water").pl()
    full = hw["gallons_full"].max()
    assert 55 <= full <= 70  # 50 gal at 50 degC mixed to 105 degF with ~9 degC inlet water
    assert hw["gallons_available"].min() == 0.0  # after the run-outs
    assert (hw["gallons_available"] <= hw["gallons_full"] + 1e-9).all()
    # nothing is left at the end of a draw that ran out
    ends = heavy.sql("""select h.gallons_available from runouts as r join hot_water as h
        on h.device = r.device and h.received_at = r.draw_end where r.duration_s > 300""").pl()
    assert ends.height > 0 and ends["gallons_available"].max() <= 1.0
    # heating: time to full is positive and finite while a heat source runs below setpoint
    heating = hw.filter(pl.col("heating_w") > 0)
    assert heating.height > 0 and (heating["minutes_to_full"].drop_nulls() >= 0).all()


def test_report_shows_run_outs_and_findings(heavy: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    from navilink_etl.report.build import render_report
    from navilink_etl.report.data import list_devices, load

    device = list_devices(heavy)[0]
    data = load(heavy, device, START.date(), (START + timedelta(days=DAYS - 1)).date(), TZ)
    n = heavy.execute("select count(*) from runouts where local_day between ? and ?",
                      [data.start, data.end]).fetchall()[0][0]
    assert n > 0 and data.runouts.height == n
    # the timeline reads the stored hot_water rows: the same as computing them now
    full = heavy.sql("select received_at, gallons_available from int_hot_water").pl()
    got = data.hot_water.join(full, on="received_at", suffix="_view")
    assert got.height == data.hot_water.height > 0
    assert (got["gallons_available"] - got["gallons_available_view"]).abs().max() < 1e-9
    (page,) = render_report(data, out_dir=tmp_path, formats=("html",))
    html = page.read_text(encoding="utf-8")
    assert html.index("<h2>Findings</h2>") < html.index('class="tiles"')  # the box comes first
    assert f'Run-outs this period</div><div class="value">{n}</div>' in html
    assert "Hot water available" in html
