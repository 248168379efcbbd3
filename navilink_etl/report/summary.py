"""Headline figures for one report period: the warehouse's daily rows summed over the period.

Nothing is re-derived here: the daily numbers come from ``energy_daily``, ``efficiency_daily``,
``draws`` and ``element_use``, summed exactly as ``efficiency_monthly`` sums a month (SPF = sum heat / sum
electricity, never a mean of daily or cycle COPs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from .charts import CAUSE_LABEL, COVERAGE_OK, Tile
from .data import ReportData
from .html import Table
from .units import Units


@dataclass(frozen=True)
class Summary:
    days: int
    days_with_data: int
    electricity_wh: float
    compressor_wh: float
    element_wh: float
    standby_wh: float
    heat_out_wh: float | None
    measured_heat_share: float | None  # share of heat_out_wh measured rather than modelled
    period_cop: float | None  # SPF: all heat delivered / all electricity (standby included)
    hp_share: float | None  # share of heating electricity that went to the heat pump
    cost: float | None
    element_cost: float | None
    avoidable_element_cost: float | None  # the part a setting could have avoided (element_use)
    resistance_cost: float | None  # the same heat from an electric-resistance heater
    savings: float | None
    hot_water_gal: float | None  # equivalent gallons at the tank-to-inlet rise (draws view)
    draw_energy_wh: float | None
    draws: int
    coverage: float | None  # mean share of the period's days covered
    days_low_coverage: int
    tariff: str = ""
    notes: list[str] = field(default_factory=list)
    runouts: int = 0  # draws that ran out of hot water (runouts)
    gallons_short: float | None = None  # tank water drawn below the delivery temperature

    @property
    def kwh_per_day(self) -> float | None:
        return self.electricity_wh / 1000.0 / self.days_with_data if self.days_with_data else None


def _sum(df: pl.DataFrame, col: str) -> float | None:
    if col not in df.columns or df.is_empty() or df[col].null_count() == df.height:
        return None
    return float(df[col].cast(pl.Float64).sum())


def summarize(data: ReportData) -> Summary:
    """The period's headline numbers from the already-loaded daily views."""
    ed, ef = data.energy_daily, data.efficiency
    comp = _sum(ed, "compressor_wh") or 0.0
    elem = _sum(ed, "element_wh") or 0.0
    stby = _sum(ed, "standby_wh") or 0.0
    total = _sum(ed, "total_wh")
    total = comp + elem + stby if total is None else total
    heat = _sum(ef, "heat_out_wh")
    elec = _sum(ef, "total_wh")
    cop = heat / elec if heat is not None and elec else None
    measured = None
    if heat and "measured_heat_share" in ef.columns:
        measured = float((ef["heat_out_wh"] * ef["measured_heat_share"].fill_null(0)).sum()) / heat
    cov = float(ed["coverage"].mean()) if "coverage" in ed.columns and ed.height else None  # type: ignore[arg-type]
    low = int((ed["coverage"] < COVERAGE_OK).sum()) if "coverage" in ed.columns else 0
    missing_days = data.days - ed.height
    notes: list[str] = []
    if missing_days > 0:
        notes.append(f"{missing_days} of {data.days} days have no data at all.")
    if low:
        notes.append(f"{low} day(s) below {COVERAGE_OK:.0%} coverage: their totals are low by the "
                     "missing time and are shown in red.")
    if measured is not None:
        notes.append(f"{100 * measured:.0f} % of the heat delivered was measured (cycles without a "
                     "draw); the rest is modelled from the unit's own measured cycles.")
    if _sum(ef, "element_cost") is None and elem > 0:
        notes.append("Element cost is not shown: no price covers the element's running time.")
    vol = _sum(data.draws, "equivalent_gal")
    return Summary(
        days=data.days, days_with_data=ed.height, electricity_wh=total, compressor_wh=comp,
        element_wh=elem, standby_wh=stby, heat_out_wh=heat, measured_heat_share=measured,
        period_cop=cop,
        hp_share=comp / (comp + elem) if comp + elem > 0 else None,
        cost=_sum(ef, "cost"), element_cost=_sum(ef, "element_cost"),
        avoidable_element_cost=_sum(data.element_use, "avoidable_cost"),
        resistance_cost=_sum(ef, "resistance_cost"), savings=_sum(ef, "savings"),
        hot_water_gal=vol, draw_energy_wh=_sum(data.draws, "energy_wh"), draws=data.draws.height,
        coverage=cov, days_low_coverage=low, tariff=data.tariff, notes=notes,
        runouts=data.runouts.height, gallons_short=_sum(data.runouts, "gallons_short"),
    )


def _fmt(v: float | None, spec: str, suffix: str = "", prefix: str = "") -> str:
    return "n/a" if v is None else f"{prefix}{v:{spec}}{suffix}"


def tiles(s: Summary, units: Units) -> list[Tile]:
    """The headline tiles, in reading order (HTML cards and the PNG/PDF tile grid)."""
    vol = units.gal(s.hot_water_gal)
    return [
        Tile("Electricity per day", _fmt(s.kwh_per_day, ".2f", " kWh"),
             f"{s.electricity_wh / 1000:.1f} kWh over {s.days_with_data} day(s)"),
        Tile("Heat-pump share", _fmt(None if s.hp_share is None else 100 * s.hp_share, ".0f", " %"),
             "of heating electricity"),
        Tile("Period COP (SPF)", _fmt(s.period_cop, ".2f"),
             "all heat / all electricity" + ("" if s.measured_heat_share is None else
                                              f"; {100 * s.measured_heat_share:.0f} % measured")),
        Tile("Element energy", _fmt(s.element_wh / 1000, ".1f", " kWh"),
             "no price covers the element's time" if s.element_cost is None
             else f"costing ${s.element_cost:,.2f}" + (
                 "" if s.avoidable_element_cost is None
                 else f", ${s.avoidable_element_cost:,.2f} avoidable")),
        Tile("Hot water delivered", _fmt(vol, ",.0f", f" {units.volume}"),
             f"{s.draws} draws" + ("" if s.draw_energy_wh is None else
                                   f", {s.draw_energy_wh / 1000:.1f} kWh of heat")),
        Tile("Electricity cost", _fmt(s.cost, ",.2f", prefix="$"), f"at {s.tariff}" if s.tariff
             else "under the configured tariff"),
        Tile("Saved vs resistance", _fmt(s.savings, ",.2f", prefix="$"),
             "same heat from a resistance heater: " + _fmt(s.resistance_cost, ",.2f", prefix="$")),
        Tile("Data coverage", _fmt(None if s.coverage is None else 100 * s.coverage, ".1f", " %"),
             f"{s.days_low_coverage} day(s) below {COVERAGE_OK:.0%}"),
        Tile("Run-outs this period", f"{s.runouts}",
             "draws that ran out of hot water" if not s.runouts else
             f"{units.gal(s.gallons_short or 0.0):,.0f} {units.volume} drawn below the delivery "
             "temperature"),
    ]


def element_cause_table(data: ReportData) -> Table:
    """One row per cause of element use (element_use summed): runs, kWh, cost, avoidable part."""
    eu = data.element_use
    if eu.is_empty():
        return Table(["Cause", "Runs", "Element (kWh)", "Cost", "Avoidable (kWh)", "Avoidable cost"],
                     [])
    per = eu.group_by("cause").agg(
        pl.len().alias("runs"), pl.col("element_wh").sum(), pl.col("avoidable_wh").sum(),
        pl.col("cost").sum().alias("cost"), pl.col("avoidable_cost").sum().alias("avoidable_cost"),
        pl.col("cost").is_null().all().alias("unpriced"))
    order = {c: i for i, c in enumerate(CAUSE_LABEL)}
    rows = []
    for r in sorted(per.iter_rows(named=True), key=lambda r: order.get(r["cause"], 99)):
        money = (lambda v: "n/a") if r["unpriced"] else (lambda v: f"${v or 0:,.2f}")
        rows.append([CAUSE_LABEL.get(r["cause"], r["cause"]), r["runs"],
                     f"{r['element_wh'] / 1000:.2f}", money(r["cost"]),
                     f"{r['avoidable_wh'] / 1000:.2f}", money(r["avoidable_cost"])])
    return Table(["Cause", "Runs", "Element (kWh)", "Cost", "Avoidable (kWh)", "Avoidable cost"], rows)


def coverage_table(data: ReportData) -> Table:
    """One row per day: coverage, gap minutes and totals; days below the threshold flagged."""
    ed = data.energy_daily.sort("day") if not data.energy_daily.is_empty() else data.energy_daily
    rows, flagged = [], []
    for r in ed.iter_rows(named=True):
        c = r.get("coverage")
        rows.append([str(r["day"]), "n/a" if c is None else f"{100 * c:.1f} %",
                     f"{(r.get('gap_minutes') or 0):.0f}", f"{(r.get('total_wh') or 0) / 1000:.2f}"])
        flagged.append(c is not None and c < COVERAGE_OK)
    return Table(["Day", "Coverage", "Gaps (min)", "Electricity (kWh)"], rows, flagged)
