"""report.charts: every chart has its title, labelled axes and caption, and draws the right data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from navilink_etl.report import charts
from navilink_etl.report.units import Units
from tests import report_frames as rf

CHARTS: dict[str, Callable[[], Figure]] = {
    "headline": lambda: charts.headline([charts.Tile("Electricity per day", "3.2 kWh", "4 days")] * 5),
    "timeline": lambda: charts.timeline(rf.status(), rf.cycles(), rf.draws(), tz=rf.TZ),
    "daily_energy": lambda: charts.daily_energy(rf.energy_daily()),
    "cycles": lambda: charts.cycles(rf.cycles(), tz=rf.TZ),
    "recovery": lambda: charts.recovery(rf.cycles()),
    "cop": lambda: charts.cop_vs_ambient(rf.cycles(), period_cop=3.0),
    "standby_draws": lambda: charts.standby_and_draws(rf.standby(), rf.draws(), tz=rf.TZ),
    "coverage": lambda: charts.coverage(rf.energy_daily()),
    "element_causes": lambda: charts.element_causes(rf.element_use(), tz=rf.TZ),
}
EMPTY: dict[str, Callable[[], Figure]] = {
    "timeline": lambda: charts.timeline(rf.status().clear(), rf.cycles().clear(), rf.draws().clear()),
    "daily_energy": lambda: charts.daily_energy(rf.energy_daily().clear()),
    "cycles": lambda: charts.cycles(rf.cycles().clear()),
    "recovery": lambda: charts.recovery(rf.cycles().clear()),
    "cop": lambda: charts.cop_vs_ambient(rf.cycles().clear()),
    "standby_draws": lambda: charts.standby_and_draws(rf.standby().clear(), rf.draws().clear()),
    "coverage": lambda: charts.coverage(rf.energy_daily().clear()),
    "element_causes": lambda: charts.element_causes(rf.element_use().clear()),
}


def _bars(ax: object) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", CHARTS)
def test_every_chart_has_title_caption_and_labelled_axes(name: str) -> None:
    fig = CHARTS[name]()
    assert charts.title_of(fig)
    cap = charts.caption_of(fig)
    assert cap and "\n" not in cap and len(cap) < 180
    if name == "headline":
        return
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        ylabel, xlabel = ax.get_ylabel(), ax.get_xlabel()
        assert ylabel, f"{name}: an axes has no y label"
        shared_x = ax.get_shared_x_axes().get_siblings(ax)
        assert xlabel or any(a.get_xlabel() for a in shared_x if a is not ax), f"{name}: no x label"
        # every quantitative label carries its unit in brackets
        assert "(" in ylabel and ")" in ylabel, f"{name}: y label {ylabel!r} has no unit"
    fig.savefig(__import__("io").BytesIO(), format="png", dpi=50)  # draws without error


@pytest.mark.parametrize("name", EMPTY)
def test_charts_say_so_when_there_is_no_data(name: str) -> None:
    fig = EMPTY[name]()
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.startswith("No ") for t in texts), texts
    fig.savefig(__import__("io").BytesIO(), format="png", dpi=50)


def test_timeline_converts_units_and_breaks_lines_at_gaps() -> None:
    st = rf.status(hours=24, interval_s=60)
    f_fig = charts.timeline(st, units="F", tz=rf.TZ, max_points=10_000)
    c_fig = charts.timeline(st, units="C", tz=rf.TZ, max_points=10_000)
    f_upper = f_fig.axes[0].lines[0].get_ydata()
    c_upper = c_fig.axes[0].lines[0].get_ydata()
    finite = np.isfinite(c_upper)
    np.testing.assert_allclose(f_upper[finite], c_upper[finite] * 1.8 + 32)
    assert f_fig.axes[0].get_ylabel() == "Tank temperature (°F)"
    assert c_fig.axes[0].get_ylabel() == "Tank temperature (°C)"
    # the 3-hour outage (10:00-13:00) is one NaN break, not a straight line across
    assert (~finite).sum() == 1
    assert len(c_upper) == st.height + 1


def test_timeline_downsamples_long_periods() -> None:
    st = rf.status(hours=24 * 60, interval_s=30, gap=None)  # 172,800 samples
    fig = charts.timeline(st, tz=rf.TZ, max_points=2000, last_days=None)
    y = fig.axes[0].lines[0].get_ydata()
    assert 1000 < len(y) <= 2100
    np.testing.assert_allclose(np.nanmean(y), st["tank_upper_c"].mean() * 1.8 + 32, rtol=1e-3)
    assert charts.title_of(fig) == "Tank timeline"


def test_timeline_shows_only_the_last_days_of_a_long_period() -> None:
    st = rf.status(hours=24 * 60, interval_s=300, gap=None)
    fig = charts.timeline(st, rf.cycles(), rf.draws(), tz=rf.TZ, last_days=7)
    assert charts.title_of(fig) == "Tank timeline: the last 7 days"
    x = fig.axes[0].lines[0].get_xdata()
    assert np.timedelta64(6, "D") < x.max() - x.min() <= np.timedelta64(7, "D")
    # the hand-built cycles and draws all lie in the first days, so nothing is shaded or marked
    assert not fig.axes[0].collections


def test_timeline_shades_each_cycle_by_source_and_marks_draws() -> None:
    cyc, dr = rf.cycles(), rf.draws()
    fig = charts.timeline(rf.status(), cyc, dr, tz=rf.TZ)
    ax = fig.axes[0]
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    by_color = {to_hex(p.get_facecolor()[0], keep_alpha=False): len(p.get_paths()) for p in polys}
    assert by_color == {charts.COLORS["heat_pump"]: 6, charts.COLORS["hybrid"]: 3,
                        charts.COLORS["element"]: 1}
    ticks = [c for c in ax.collections if not isinstance(c, PolyCollection)]
    assert sum(len(c.get_segments()) for c in ticks) == dr.height  # type: ignore[attr-defined]


def test_daily_energy_stacks_sources_in_kwh_with_ems_and_residual() -> None:
    ed = rf.energy_daily()
    fig = charts.daily_energy(ed)
    ax, ax_r = fig.axes[0], fig.axes[1]
    bars = _bars(ax)
    assert len(bars) == 3 * ed.height
    hp = [b for b in bars if to_hex(b.get_facecolor(), keep_alpha=False) == charts.COLORS["heat_pump"]]
    el = [b for b in bars if to_hex(b.get_facecolor(), keep_alpha=False) == charts.COLORS["element"]]
    sb = [b for b in bars if to_hex(b.get_facecolor(), keep_alpha=False) == charts.COLORS["standby"]]
    assert [round(b.get_height(), 3) for b in hp] == [c / 1000 for c in ed["compressor_wh"]]
    assert [round(b.get_y(), 3) for b in el] == [c / 1000 for c in ed["compressor_wh"]]
    np.testing.assert_allclose([b.get_y() + b.get_height() for b in sb], ed["total_wh"] / 1000)
    ems = ax.lines[0].get_ydata()
    np.testing.assert_allclose(ems, (ed["ems_heat_pump_wh"] + ed["ems_element_wh"]) / 1000)
    assert [round(b.get_height(), 3) for b in _bars(ax_r)] == [0.02] * ed.height


def test_cycles_per_day_counts_local_days() -> None:
    # 01:00 UTC on Mar 2 is still Mar 1 in Los Angeles
    cyc = rf.cycles().with_columns(pl.col("cycle_start") + timedelta(hours=-8))
    fig = charts.cycles(cyc, tz=rf.TZ)
    ax_d = fig.axes[2]
    starts_local = cyc["cycle_start"].dt.convert_time_zone(rf.TZ).dt.date()
    expected = starts_local.value_counts().sort("cycle_start")["count"].to_list()
    # stacked bars: the top of each day's stack is that day's count
    tops: dict[float, float] = {}
    for b in _bars(ax_d):
        x = round(b.get_x() + b.get_width() / 2, 3)
        tops[x] = max(tops.get(x, 0.0), b.get_y() + b.get_height())
    assert [tops[k] for k in sorted(tops)] == expected
    hist_total = sum(b.get_height() for b in _bars(fig.axes[0]))
    assert hist_total == cyc.height


def test_cop_chart_fills_measured_and_hollows_modelled() -> None:
    fig = charts.cop_vs_ambient(rf.cycles(), period_cop=2.95)
    ax = fig.axes[0]
    labels = {c.get_label(): c for c in ax.collections}
    measured = labels["Heat pump only, measured"]
    modelled = labels["Heat pump only, modelled"]
    assert len(measured.get_offsets()) == 4 and len(modelled.get_offsets()) == 2
    assert measured.get_facecolor()[0][3] > 0  # filled
    hollow = modelled.get_facecolor()
    assert hollow.size == 0 or hollow[0][3] == 0
    assert any(line.get_ydata()[0] == 2.95 for line in ax.lines)
    # element-only cycles have no COP and are left out
    assert not any("Element only" in k for k in labels)


def test_recovery_in_celsius_uses_litres() -> None:
    fig = charts.recovery(rf.cycles(), units="C")
    assert fig.axes[0].get_xlabel() == "Ambient (°C)"
    assert "L/h" in fig.axes[1].get_ylabel()
    xs = np.concatenate([c.get_offsets()[:, 0] for c in fig.axes[0].collections])
    assert sorted(xs.tolist()) == [18.0 + k for k in range(10)]


def test_coverage_flags_days_below_threshold() -> None:
    fig = charts.coverage(rf.energy_daily())
    bars = _bars(fig.axes[0])
    colours = [to_hex(b.get_facecolor(), keep_alpha=False) for b in bars]
    assert colours == [charts.COLORS["ok"], charts.COLORS["warn"], charts.COLORS["ok"], charts.COLORS["ok"]]


def test_standby_chart_reports_median_ua_and_half_life() -> None:
    fig = charts.standby_and_draws(rf.standby(), rf.draws(), tz=rf.TZ)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "median UA 2.20 W/K, half-life 85 h" in texts
    counts = [b.get_height() for b in _bars(fig.axes[1])]
    assert sum(counts) == rf.draws().height


def test_units_parsing() -> None:
    assert Units.of("f").temp == "°F" and Units.of("°C").volume == "L"
    with pytest.raises(ValueError, match="units must be"):
        Units.of("K")
