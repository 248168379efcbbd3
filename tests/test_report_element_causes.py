"""The report's "Why the element ran" section and element-cost tile, on hand-built element_use rows."""

from __future__ import annotations

import polars as pl
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

from navilink_etl.report import charts, summary
from navilink_etl.report.units import Units
from navilink_etl.sim.truth import ELEMENT_CAUSES
from tests import report_frames as rf


def test_every_cause_of_the_vocabulary_has_a_label_and_a_colour() -> None:
    assert tuple(charts.CAUSE_LABEL) == ELEMENT_CAUSES
    assert tuple(charts.CAUSE_COLORS) == ELEMENT_CAUSES
    assert len(set(charts.CAUSE_COLORS.values())) == len(ELEMENT_CAUSES)


def test_chart_draws_each_run_in_its_cause_colour_and_the_avoidable_part() -> None:
    eu = rf.element_use()
    fig = charts.element_causes(eu, tz=rf.TZ)
    ax_k, ax_t = fig.axes
    runs = {to_hex(c.get_facecolor()[0]): len(c.get_paths()) for c in ax_t.collections
            if isinstance(c, PolyCollection)}
    want = eu.group_by("cause").len()
    assert runs == {charts.CAUSE_COLORS[c]: n for c, n in want.iter_rows()}
    bars = [p for p in ax_k.patches if isinstance(p, Rectangle)]
    solid = {to_hex(b.get_facecolor()): b.get_width() for b in bars if b.get_hatch() is None}
    for c, kwh in eu.group_by("cause").agg(pl.col("element_wh").sum() / 1000).iter_rows():
        assert solid[charts.CAUSE_COLORS[c]] == pytest.approx(kwh)
    hatched = sum(b.get_width() for b in bars if b.get_hatch())
    assert hatched == pytest.approx(eu["avoidable_wh"].sum() / 1000)
    labels = [t.get_text() for t in ax_k.get_yticklabels()]
    assert labels == ["Room too cold for the heat pump", "Heavy use (demand)", "Setpoint raised",
                      "Anti-Legionella cycle"]  # vocabulary order, top down


def test_cause_table_sums_the_runs_per_cause() -> None:
    data = rf.report_data()
    t = summary.element_cause_table(data)
    by = {r[0]: r for r in t.rows}
    assert list(by) == ["Room too cold for the heat pump", "Heavy use (demand)", "Setpoint raised",
                        "Anti-Legionella cycle"]
    eu = data.element_use.filter(pl.col("cause") == "demand")
    assert by["Heavy use (demand)"][1] == 3
    assert by["Heavy use (demand)"][2] == f"{eu['element_wh'].sum() / 1000:.2f}"
    assert by["Heavy use (demand)"][4] == f"{eu['avoidable_wh'].sum() / 1000:.2f}"
    assert by["Room too cold for the heat pump"][4] == "0.00"
    assert summary.element_cause_table(rf.report_data().__class__(
        **{**data.__dict__, "element_use": data.element_use.clear()})).rows == []


def test_element_tile_shows_its_cost_and_the_avoidable_part() -> None:
    data = rf.report_data()
    s = summary.summarize(data)
    tile = next(t for t in summary.tiles(s, Units.of("F")) if t.label == "Element energy")
    avoid = data.element_use["avoidable_cost"].sum()
    assert tile.note == f"costing ${0.1 * data.days:,.2f}, ${avoid:,.2f} avoidable"
    assert not any("Element cost is not shown" in n for n in s.notes)
