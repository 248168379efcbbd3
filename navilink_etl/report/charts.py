"""Warehouse DataFrames -> matplotlib Figures: one function per report chart, one house style.

Every figure has a title (``gid="title"``), axis labels with units and a one-line caption saying
how to read it (``gid="caption"``; read back with :func:`caption_of`). Figures are created
without pyplot, so building many of them leaks nothing. Inputs are polars frames with the
warehouse views' columns; temperatures arrive in degC and are shown in ``units`` (°F default).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, StepPatch

from .units import Units

# One colour per meaning, everywhere: heat pump, element, standby, and what mixes them.
COLORS: dict[str, str] = {
    "heat_pump": "#2a9d8f",
    "hybrid": "#8d6cab",
    "element": "#e76f51",
    "standby": "#a6a6a6",
    "ems": "#1d1d1f",
    "tank_upper": "#c0392b",
    "tank_lower": "#2e86c1",
    "usable": "#b8860b",
    "charge": "#5d6d7e",
    "draw": "#475569",
    "ambient": "#7f8c8d",
    "warn": "#d62728",
    "ok": "#4c9f70",
}
# element_use.cause: its fixed vocabulary in reading order, a label and a colour each
CAUSE_LABEL: dict[str, str] = {
    "mode_electric": "Electric mode", "mode_high_demand": "High Demand mode",
    "cold_lockout": "Room too cold for the heat pump", "demand": "Heavy use (demand)",
    "setpoint_raise": "Setpoint raised", "anti_legionella": "Anti-Legionella cycle",
    "freeze_protection": "Freeze protection", "unknown": "Unknown",
}
CAUSE_COLORS: dict[str, str] = {
    "mode_electric": "#e76f51", "mode_high_demand": "#f4a261", "cold_lockout": "#2e86c1",
    "demand": "#8d6cab", "setpoint_raise": "#e9c46a", "anti_legionella": "#264653",
    "freeze_protection": "#76b5c5", "unknown": "#a6a6a6",
}
MIX_ORDER: tuple[str, ...] = ("heat_pump", "hybrid", "element")
MIX_LABEL: dict[str, str] = {"heat_pump": "Heat pump only", "hybrid": "Hybrid", "element": "Element only"}

STYLE: dict[Any, Any] = {  # rcParams (typed loosely: matplotlib types the keys as Literals)
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
}
COVERAGE_OK = 0.95  # a day below this share covered is flagged (docs/metrics.md 2.11: coverage)
_CAPTION_IN = 0.38  # inches reserved under each figure for its caption
MAX_BARS = 62  # longer day series are drawn as filled steps: one artist instead of one per day


@dataclass(frozen=True, slots=True)
class Tile:
    """One headline number: ``value`` already formatted, ``note`` says what it is based on."""

    label: str
    value: str
    note: str = ""


# --- helpers -------------------------------------------------------------------------------------


def _figure(title: str, caption: str, *, width: float = 10.0, height: float = 4.2,
            nrows: int = 1, ncols: int = 1, **subplot_kw: Any) -> tuple[Figure, np.ndarray]:
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        bottom = _CAPTION_IN / height
        fig.get_layout_engine().set(rect=(0.0, bottom, 1.0, 1.0 - bottom))  # type: ignore[union-attr, call-arg]
        axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
        fig.suptitle(title, x=0.01, ha="left", fontsize=13, fontweight="bold", gid="title")
        fig.text(0.01, 0.12 * bottom, caption, ha="left", va="bottom", fontsize=9,
                 color="#444444", style="italic", gid="caption")
    return fig, axes


def _styled(fn: Any) -> Any:
    """Run a chart function under the house rcParams (fonts, grid, spines)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with mpl.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def caption_of(fig: Figure) -> str:
    """The one-line caption drawn under a figure made here."""
    return next((t.get_text() for t in fig.texts if t.get_gid() == "caption"), "")


def title_of(fig: Figure) -> str:
    """The title of a figure made here."""
    return fig.get_suptitle()


def _f(df: pl.DataFrame, col: str) -> np.ndarray:
    """A column as float64 numpy with NaN for nulls (a missing column reads as all-NaN)."""
    if col not in df.columns:
        return np.full(df.height, np.nan)
    return df[col].cast(pl.Float64).fill_null(float("nan")).to_numpy()


def _utc(df: pl.DataFrame, col: str) -> np.ndarray:
    """Timestamps as UTC datetime64 (monotonic across DST; the axis formatter shows local time)."""
    s = df[col]
    if isinstance(s.dtype, pl.Datetime) and s.dtype.time_zone is not None:
        s = s.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return s.to_numpy()


def _local_day(df: pl.DataFrame, ts: str, tz: str) -> pl.Series:
    """The view's ``local_day`` (its own time-zone setting) or, failing that, ``ts`` in ``tz``."""
    if "local_day" in df.columns:
        return df["local_day"]
    return df[ts].dt.convert_time_zone(tz).dt.date()


def _day_bars(ax: Axes, days: np.ndarray, values: np.ndarray, *, bottom: np.ndarray | None = None,
              color: Any, **kw: Any) -> None:
    """Bars per day; for long periods one filled step patch (same look, far fewer artists).

    ``color`` may be one colour or one per day (bars only; steps take the first).
    """
    vals = np.nan_to_num(np.asarray(values, dtype=float))
    base = np.zeros_like(vals) if bottom is None else np.asarray(bottom, dtype=float)
    if len(days) <= MAX_BARS:
        ax.bar(days, vals, bottom=base, width=0.8, color=color, **kw)
        return
    x = mdates.date2num(days)
    full = np.arange(x.min(), x.max() + 1)  # missing days become empty bins, not wide ones
    idx = np.searchsorted(full, x)
    v, b = np.zeros(len(full)), np.zeros(len(full))
    v[idx], b[idx] = vals, base
    edges = np.append(full - 0.5, full[-1] + 0.5)
    c = color if isinstance(color, str) else color[0]
    _stairs(ax, v + b, edges, b, color=c, lw=0, **kw)


def _stairs(ax: Axes, heights: np.ndarray, edges: np.ndarray, baseline: np.ndarray,
            **kw: Any) -> None:
    """``ax.stairs(heights, edges, baseline=baseline, fill=True, **kw)`` for float data, with the
    data limits taken from the corners instead of walking the step path segment by segment
    (Axes.add_patch does that in Python: most of a year chart's build time). Same artist, same
    limits: the step path spans exactly these corners."""
    patch = StepPatch(heights, edges, baseline=baseline, fill=True, **kw)  # type: ignore[arg-type]
    ax.add_artist(patch)
    low = float(min(np.min(heights), np.min(baseline)))
    high = float(max(np.max(heights), np.max(baseline)))
    ax.update_datalim([(edges[0], low), (edges[-1], high)])
    patch.sticky_edges.y.append(np.min(baseline))
    ax._request_autoscale_view()  # type: ignore[attr-defined]  # as Axes.stairs does


def _empty(ax: Axes, message: str = "No data in this period") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            color="#777777", fontsize=10)
    ax.grid(False)


def _time_axis(ax: Axes, tz: str) -> None:
    """Timestamps on the x axis, labelled in local time ``tz``."""
    zone = ZoneInfo(tz)
    loc = mdates.AutoDateLocator(tz=zone, minticks=3, maxticks=9)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz=zone))


def _day_axis(ax: Axes, days: np.ndarray) -> None:
    """Local calendar days on the x axis (values are already dates: no time zone applies)."""
    n = len(np.unique(days))
    loc: mdates.DateLocator
    if n <= 16:
        loc = mdates.DayLocator(interval=1 if n <= 8 else 2)
    else:
        loc = mdates.AutoDateLocator(minticks=3, maxticks=10)
        loc.intervald[mdates.HOURLY] = [24]
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _mixes(df: pl.DataFrame) -> list[str]:
    present = set(df["source_mix"].drop_nulls().unique().to_list()) if "source_mix" in df.columns else set()
    return [m for m in MIX_ORDER if m in present] + sorted(present - set(MIX_ORDER))


def _mix_color(mix: str) -> str:
    return COLORS.get(mix, COLORS["standby"])


def _break_gaps(df: pl.DataFrame, ts: str, max_gap: timedelta) -> pl.DataFrame:
    """Insert a null row after each gap longer than ``max_gap`` so lines do not bridge outages."""
    if df.height < 2:
        return df
    gaps = df.filter((pl.col(ts).shift(-1) - pl.col(ts)) > max_gap).select(
        (pl.col(ts) + timedelta(microseconds=1)).alias(ts))
    if gaps.is_empty():
        return df
    return pl.concat([df, gaps], how="diagonal_relaxed").sort(ts)


# --- headline -----------------------------------------------------------------------------------


@_styled
def headline(tiles: Sequence[Tile], *, title: str = "Headline figures") -> Figure:
    """The headline numbers as a grid of tiles (for the PDF and PNG outputs; HTML uses cards)."""
    ncols = 4
    nrows = max(1, -(-len(tiles) // ncols))
    fig, axes = _figure(title, "Each tile is a total or ratio over the whole period; the small "
                        "print says what it is based on.", height=1.45 * nrows + 0.9,
                        nrows=nrows, ncols=ncols)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= len(tiles):
            continue
        t = tiles[i]
        ax.add_patch(mpl.patches.FancyBboxPatch(
            (0.02, 0.04), 0.96, 0.92, boxstyle="round,pad=0.0,rounding_size=0.06",
            transform=ax.transAxes, facecolor="#f4f6f7", edgecolor="#d5dbdb"))
        ax.text(0.08, 0.72, t.label, transform=ax.transAxes, fontsize=9.5, color="#555555")
        ax.text(0.08, 0.38, t.value, transform=ax.transAxes, fontsize=17, fontweight="bold",
                color="#1d1d1f")
        if t.note:
            ax.text(0.08, 0.14, t.note, transform=ax.transAxes, fontsize=7.5, color="#777777")
    return fig


# --- timeline -----------------------------------------------------------------------------------


def _spans(ax: Axes, starts: np.ndarray, ends: np.ndarray, color: str, alpha: float) -> None:
    if len(starts) == 0:
        return
    x0 = mdates.date2num(starts)
    x1 = mdates.date2num(ends)
    verts = [((a, 0.0), (a, 1.0), (b, 1.0), (b, 0.0)) for a, b in zip(x0, x1, strict=True)]
    ax.add_collection(PolyCollection(verts, transform=ax.get_xaxis_transform(), facecolors=color,
                                     edgecolors="none", alpha=alpha, zorder=0), autolim=False)


@_styled
def timeline(status: pl.DataFrame, cycles: pl.DataFrame | None = None,
             draws: pl.DataFrame | None = None, *, units: str | Units = "F", tz: str = "UTC",
             max_points: int = 4000, last_days: int | None = 31) -> Figure:
    """Tank temperatures, usable energy and dhwChargePer over time; heating shaded, draws marked.

    ``status`` (stg_status): received_at, tank_upper_c, tank_lower_c, stored_wh, dhw_charge_pct.
    ``cycles``: cycle_start, cycle_end, source_mix. ``draws``: draw_start.
    Only the last ``last_days`` are drawn (single cycles are unreadable over longer spans; the
    daily charts cover the whole period); more than ``max_points`` samples are averaged into
    buckets; outages break the lines.
    """
    u = Units.of(units)
    st = status.sort("received_at")
    title = "Tank timeline"
    if not st.is_empty() and last_days is not None:
        cut = st["received_at"].max() - timedelta(days=last_days)  # type: ignore[operator]
        if st["received_at"].min() < cut:  # type: ignore[operator]
            title += f": the last {last_days} days"
            st = st.filter(pl.col("received_at") >= cut)
            cycles = None if cycles is None else cycles.filter(pl.col("cycle_end") >= cut)
            draws = None if draws is None else draws.filter(pl.col("draw_start") >= cut)
    fig, axes = _figure(
        title,
        "Lines: tank sensors, stored energy and the device's charge %; shading: heating by source; "
        "ticks at the top: hot-water draws; breaks: no data.",
        height=6.4, nrows=3, sharex=True, gridspec_kw={"height_ratios": [3, 1.6, 1.2]})
    ax_t, ax_e, ax_c = axes[:, 0]
    ax_t.set_ylabel(f"Tank temperature ({u.temp})")
    ax_e.set_ylabel("Usable energy (kWh)")
    ax_c.set_ylabel("dhwChargePer (%)")
    ax_c.set_xlabel(f"Local time ({tz})")
    if st.is_empty():
        _empty(ax_t)
        return fig
    span = st["received_at"].max() - st["received_at"].min()  # type: ignore[operator]
    if st.height > max_points and isinstance(span, timedelta) and span.total_seconds() > 0:
        every = max(60, int(span.total_seconds() / max_points))
        st = st.group_by_dynamic("received_at", every=f"{every}s").agg(
            pl.col(c).mean() for c in ("tank_upper_c", "tank_lower_c", "stored_wh",
                                      "dhw_charge_pct") if c in st.columns)
        max_gap = timedelta(seconds=3 * every)
    else:
        max_gap = timedelta(minutes=15)  # the gap cap (docs/metrics.md 2.2: sample intervals)
    st = _break_gaps(st, "received_at", max_gap)
    x = _utc(st, "received_at")
    ax_t.plot(x, u.t(_f(st, "tank_upper_c")), color=COLORS["tank_upper"], lw=1.3, label="Upper sensor")
    ax_t.plot(x, u.t(_f(st, "tank_lower_c")), color=COLORS["tank_lower"], lw=1.3, label="Lower sensor")
    ax_e.plot(x, _f(st, "stored_wh") / 1000.0, color=COLORS["usable"], lw=1.3)
    ax_e.set_ylim(bottom=0)
    ax_c.plot(x, _f(st, "dhw_charge_pct"), color=COLORS["charge"], lw=1.1)
    ax_c.set_ylim(0, 105)

    handles: list[Any] = [Line2D([], [], color=COLORS["tank_upper"], label="Upper sensor"),
                          Line2D([], [], color=COLORS["tank_lower"], label="Lower sensor")]
    if cycles is not None and not cycles.is_empty():
        for mix in _mixes(cycles):
            c = cycles.filter(pl.col("source_mix") == mix)
            s, e = _utc(c, "cycle_start"), _utc(c, "cycle_end")
            for ax in (ax_t, ax_e, ax_c):
                _spans(ax, s, e, _mix_color(mix), 0.2)
            handles.append(Patch(color=_mix_color(mix), alpha=0.35, label=MIX_LABEL.get(mix, mix)))
    if draws is not None and not draws.is_empty():
        ax_t.vlines(_utc(draws, "draw_start"), 0.94, 1.0, transform=ax_t.get_xaxis_transform(),
                    color=COLORS["draw"], lw=1.0)
        handles.append(Line2D([], [], color=COLORS["draw"], lw=1.5, label="Draw"))
    ax_t.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=len(handles),
                fontsize=8.5, borderaxespad=0.2)
    _time_axis(ax_c, tz)
    return fig


# --- daily energy -------------------------------------------------------------------------------


@_styled
def daily_energy(energy_daily: pl.DataFrame) -> Figure:
    """Daily electricity stacked heat pump / element / standby, the device's EMS totals, residual.

    ``energy_daily``: day, compressor_wh, element_wh, standby_wh, ems_heat_pump_wh,
    ems_element_wh, residual_heat_pump_wh, residual_element_wh.
    """
    fig, axes = _figure(
        "Daily electricity by source",
        "Bars: our measured kWh per local day by source; diamonds: the device's own EMS total "
        "(heat pump + element); lower panel: ours minus EMS.",
        height=5.4, nrows=2, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    ax, ax_r = axes[:, 0]
    ax.set_ylabel("Electricity (kWh/day)")
    ax_r.set_ylabel("Ours − EMS (kWh)")
    ax_r.set_xlabel("Day (local)")
    if energy_daily.is_empty():
        _empty(ax)
        return fig
    d = energy_daily.sort("day")
    x = d["day"].to_numpy()
    bottom = np.zeros(d.height)
    for col, key, label in (("compressor_wh", "heat_pump", "Heat pump"),
                            ("element_wh", "element", "Element"),
                            ("standby_wh", "standby", "Standby")):
        v = np.nan_to_num(_f(d, col)) / 1000.0
        _day_bars(ax, x, v, bottom=bottom, color=COLORS[key], label=label)
        bottom += v
    ems = (_f(d, "ems_heat_pump_wh") + _f(d, "ems_element_wh")) / 1000.0
    if np.isfinite(ems).any():
        ax.plot(x, ems, ls="none", marker="D", ms=4.5 if len(x) <= MAX_BARS else 1.8,
                color=COLORS["ems"], label="EMS (heat pump + element)")
    res = (_f(d, "residual_heat_pump_wh") + _f(d, "residual_element_wh")) / 1000.0
    if np.isfinite(res).any():
        r = np.nan_to_num(res)
        if len(x) <= MAX_BARS:
            ax_r.bar(x, r, width=0.8, color=np.where(r >= 0, COLORS["heat_pump"], COLORS["element"]))
        else:
            _day_bars(ax_r, x, np.maximum(r, 0), color=COLORS["heat_pump"])
            _day_bars(ax_r, x, np.minimum(r, 0), color=COLORS["element"])
    else:
        _empty(ax_r, "No EMS history for these days")
    ax_r.axhline(0, color="#555555", lw=0.8)
    ax.set_ylim(0, max(float(np.nanmax(bottom)), float(np.nanmax(np.nan_to_num(ems)))) * 1.22 + 1e-9)
    ax.legend(loc="upper left", ncols=4)
    _day_axis(ax_r, x)
    return fig


# --- heating cycles -----------------------------------------------------------------------------


@_styled
def cycles(heating_cycles: pl.DataFrame, *, tz: str = "UTC") -> Figure:
    """Heating cycles: duration histogram, electricity per cycle by source mix, cycles per day.

    ``heating_cycles``: cycle_start, local_day, duration_s, source_mix, compressor_wh, element_wh.
    """
    fig, axes = _figure(
        "Heating cycles",
        "Left: how long cycles last; middle: electricity per cycle (box = middle half, line = "
        "median); right: cycles started per local day, by heat source.",
        width=12, height=4.2, ncols=3)
    ax_h, ax_b, ax_d = axes[0]
    ax_h.set(title="Duration", xlabel="Cycle duration (min)", ylabel="Cycles (count)")
    ax_b.set(title="Electricity per cycle", xlabel="Source mix", ylabel="Electricity (kWh/cycle)")
    ax_d.set(title="Cycles per day", xlabel="Day (local)", ylabel="Cycles started (per day)")
    if heating_cycles.is_empty():
        for ax in (ax_h, ax_b, ax_d):
            _empty(ax)
        return fig
    hc = heating_cycles.with_columns(
        (pl.col("duration_s").cast(pl.Float64) / 60.0).alias("_min"),
        ((pl.col("compressor_wh").fill_null(0) + pl.col("element_wh").fill_null(0)) / 1000.0).alias("_kwh"),
    )
    mixes = _mixes(hc)
    data = [hc.filter(pl.col("source_mix") == m)["_min"].drop_nulls().to_numpy() for m in mixes]
    bins = np.histogram_bin_edges(np.concatenate(data) if data else np.array([0.0]), bins=24)
    ax_h.hist(data, bins=bins, stacked=True, color=[_mix_color(m) for m in mixes],
              label=[MIX_LABEL.get(m, m) for m in mixes])
    ax_h.legend(loc="upper right")
    ax_h.yaxis.get_major_locator().set_params(integer=True)

    kwh = [hc.filter(pl.col("source_mix") == m)["_kwh"].drop_nulls().to_numpy() for m in mixes]
    bp = ax_b.boxplot(kwh, tick_labels=[MIX_LABEL.get(m, m) for m in mixes], patch_artist=True,
                      widths=0.55, showfliers=False, medianprops={"color": "#1d1d1f"})
    rng = np.random.default_rng(0)
    for i, (box, m, v) in enumerate(zip(bp["boxes"], mixes, kwh, strict=True)):
        box.set(facecolor=_mix_color(m), alpha=0.45, edgecolor=_mix_color(m))
        ax_b.scatter(i + 1 + rng.uniform(-0.18, 0.18, len(v)), v, s=9, color=_mix_color(m),
                     alpha=0.7, lw=0, zorder=3)

    day = hc.with_columns(_day=_local_day(hc, "cycle_start", tz))
    per = day.group_by("_day", "source_mix").len().pivot(on="source_mix", index="_day",
                                                        values="len").sort("_day").fill_null(0)
    x = per["_day"].to_numpy()
    bottom = np.zeros(per.height)
    for m in mixes:
        v = per[m].to_numpy().astype(float) if m in per.columns else np.zeros(per.height)
        _day_bars(ax_d, x, v, bottom=bottom, color=_mix_color(m))
        bottom += v
    ax_d.yaxis.get_major_locator().set_params(integer=True)
    _day_axis(ax_d, x)
    return fig


# --- recovery -----------------------------------------------------------------------------------


@_styled
def recovery(recovery_rates: pl.DataFrame, *, units: str | Units = "F") -> Figure:
    """Recovery rate per cycle against room temperature, and hot water made per hour, by source mix.

    ``recovery_rates``: source_mix, ambient_c, k_per_h, gal_per_h_67f.
    """
    u = Units.of(units)
    vol_h = "gal/h at a 67 °F rise" if u.system == "F" else "L/h at a 37.2 K rise"
    fig, axes = _figure(
        "Recovery rate",
        "Left: how fast the tank warms during each cycle against room temperature; right: hot "
        "water made per hour by source mix (box = middle half).",
        width=11, height=4.2, ncols=2, gridspec_kw={"width_ratios": [1.6, 1]})
    ax_s, ax_b = axes[0]
    ax_s.set(title="By room temperature", xlabel=f"Ambient ({u.temp})",
             ylabel=f"Tank warming rate ({u.temp}/h)")
    ax_b.set(title="By source mix", xlabel="Source mix", ylabel=f"Recovery ({vol_h})")
    rr = recovery_rates.filter(pl.col("k_per_h").is_not_null()) if not recovery_rates.is_empty() \
        else recovery_rates
    if rr.is_empty():
        _empty(ax_s)
        _empty(ax_b)
        return fig
    mixes = _mixes(rr)
    vols = []
    for m in mixes:
        r = rr.filter(pl.col("source_mix") == m)
        ax_s.scatter(u.t(_f(r, "ambient_c")), u.dt(_f(r, "k_per_h")), s=16,
                     color=_mix_color(m), alpha=0.75, lw=0, label=MIX_LABEL.get(m, m))
        vols.append(u.gal(_f(r, "gal_per_h_67f")))
    ax_s.legend(loc="best")
    if any(len(v[np.isfinite(v)]) for v in vols):
        bp = ax_b.boxplot([v[np.isfinite(v)] for v in vols], patch_artist=True, widths=0.55,
                          tick_labels=[MIX_LABEL.get(m, m) for m in mixes], showfliers=False,
                          medianprops={"color": "#1d1d1f"})
        for box, m in zip(bp["boxes"], mixes, strict=True):
            box.set(facecolor=_mix_color(m), alpha=0.5, edgecolor=_mix_color(m))
    else:
        _empty(ax_b)
    return fig


# --- COP ----------------------------------------------------------------------------------------


@_styled
def cop_vs_ambient(heating_cycles: pl.DataFrame, *, units: str | Units = "F",
                   period_cop: float | None = None) -> Figure:
    """Heat-pump COP per cycle against room temperature; measured vs modelled, period SPF line.

    ``heating_cycles``: ambient_c, cop, method (measured / modelled), source_mix.
    """
    u = Units.of(units)
    fig, axes = _figure(
        "Heat-pump COP against room temperature",
        "Each dot is a heating cycle; filled = measured (no draw during the cycle), hollow = "
        "modelled; dashed line: period COP (total heat / total electricity).",
        height=4.4)
    ax = axes[0, 0]
    ax.set(xlabel=f"Ambient ({u.temp})", ylabel="COP (heat out / electricity in)")
    hc = heating_cycles.filter(pl.col("cop").is_not_null() & pl.col("cop").is_finite()) \
        if not heating_cycles.is_empty() else heating_cycles
    if hc.is_empty():
        _empty(ax, "No cycle with compressor energy in this period")
        return fig
    for m in _mixes(hc):
        for method, filled in (("measured", True), ("modelled", False)):
            c = hc.filter((pl.col("source_mix") == m) & (pl.col("method") == method))
            if c.is_empty():
                continue
            col = _mix_color(m)
            ax.scatter(u.t(_f(c, "ambient_c")), _f(c, "cop"), s=22, lw=1.1,
                       facecolors=col if filled else "none", edgecolors=col, alpha=0.8,
                       label=f"{MIX_LABEL.get(m, m)}, {method}")
    if period_cop is not None and np.isfinite(period_cop):
        ax.axhline(period_cop, color=COLORS["ems"], ls="--", lw=1.1,
                   label=f"Period COP {period_cop:.2f}")
    ax.set_ylim(bottom=0)
    ax.legend(loc="best", ncols=2)
    return fig


# --- standby and draws --------------------------------------------------------------------------


@_styled
def standby_and_draws(standby_loss: pl.DataFrame, draws: pl.DataFrame, *,
                      units: str | Units = "F", tz: str = "UTC") -> Figure:
    """Standby loss per quiet window (UA, half-life) and hot-water draws per day.

    ``standby_loss``: window_start, ua_w_per_k, half_life_h. ``draws``: draw_start, local_day,
    equivalent_gal.
    """
    u = Units.of(units)
    fig, axes = _figure(
        "Standby loss and hot-water draws",
        "Left: heat-loss coefficient fitted on each quiet window (no heating, no draw, ≥4 h); "
        "right: draws (bars) and volume (line) per local day.",
        width=11, height=4.2, ncols=2)
    ax_s, ax_d = axes[0]
    ax_s.set(title="Standby loss", xlabel="Window start (local)", ylabel="UA (W/K)")
    ax_d.set(title="Draws per day", xlabel="Day (local)", ylabel="Draws (per day)")
    sl = standby_loss.filter(pl.col("ua_w_per_k").is_not_null()) if not standby_loss.is_empty() \
        else standby_loss
    if sl.is_empty():
        _empty(ax_s, "No quiet window of 4 h or more")
    else:
        ua = _f(sl, "ua_w_per_k")
        ax_s.scatter(_utc(sl, "window_start"), ua, s=24, color=COLORS["standby"],
                     edgecolors="#555555", lw=0.6, zorder=3)
        med = float(np.nanmedian(ua))
        hl = float(np.nanmedian(_f(sl, "half_life_h")))
        ax_s.axhline(med, color="#555555", ls="--", lw=1)
        note = f"median UA {med:.2f} W/K" + (f", half-life {hl:.0f} h" if np.isfinite(hl) else "")
        ax_s.text(0.02, 0.95, note, transform=ax_s.transAxes, va="top", fontsize=9)
        ax_s.set_ylim(0, max(4.0, float(np.nanmax(ua)) * 1.2))
        _time_axis(ax_s, tz)
    if draws.is_empty():
        _empty(ax_d, "No draws detected")
        return fig
    per = draws.with_columns(_day=_local_day(draws, "draw_start", tz)).group_by("_day").agg(
        pl.len().alias("n"), pl.col("equivalent_gal").sum().alias("vol")).sort("_day")
    x = per["_day"].to_numpy()
    _day_bars(ax_d, x, per["n"].to_numpy(), color=COLORS["draw"], alpha=0.55, label="Draws")
    ax_d.yaxis.get_major_locator().set_params(integer=True)
    ax_v = ax_d.twinx()
    long = len(x) > MAX_BARS
    ax_v.plot(x, u.gal(_f(per, "vol")), color=COLORS["draw"], marker="o", ms=0 if long else 3.5,
              lw=0.9 if long else 1.4,
              label=f"Volume ({u.volume})")
    ax_v.set_ylabel(f"Volume drawn ({u.volume}/day)")
    ax_v.set_ylim(bottom=0)
    ax_v.grid(False)
    ax_v.spines["right"].set_visible(True)
    _day_axis(ax_d, x)
    return fig


# --- data quality -------------------------------------------------------------------------------


@_styled
def coverage(energy_daily: pl.DataFrame, *, threshold: float = COVERAGE_OK) -> Figure:
    """Share of each day covered by samples, flagged below ``threshold``, with gap minutes.

    ``energy_daily``: day, coverage (0-1), gap_minutes.
    """
    fig, axes = _figure(
        "Data coverage",
        f"Bars: share of each local day with samples (red below {threshold:.0%}: numbers for "
        "that day are less certain); dots: minutes of gaps on days with gaps.",
        height=3.6)
    ax = axes[0, 0]
    ax.set(xlabel="Day (local)", ylabel="Coverage (%)")
    if energy_daily.is_empty():
        _empty(ax)
        return fig
    d = energy_daily.sort("day")
    x = d["day"].to_numpy()
    cov = np.nan_to_num(_f(d, "coverage")) * 100.0
    ok = cov >= threshold * 100
    if len(x) <= MAX_BARS:
        ax.bar(x, cov, width=0.8, color=np.where(ok, COLORS["ok"], COLORS["warn"]))
    else:
        _day_bars(ax, x, np.where(ok, cov, 0.0), color=COLORS["ok"])
        _day_bars(ax, x, np.where(ok, 0.0, cov), color=COLORS["warn"])
    ax.axhline(threshold * 100, color="#555555", ls="--", lw=0.9)
    ax.set_ylim(0, 105)
    ax_g = ax.twinx()
    gap = _f(d, "gap_minutes")
    has = np.nan_to_num(gap) > 0
    ax_g.plot(x[has], gap[has], color="#333333", ls="none", marker="o", ms=3.5, label="Gaps")
    ax_g.set_ylabel("Gaps (min/day)")
    ax_g.set_ylim(bottom=0)
    ax_g.grid(False)
    ax_g.spines["right"].set_visible(True)
    _day_axis(ax, x)
    return fig


# --- why the element ran ------------------------------------------------------------------------


@_styled
def element_causes(element_use: pl.DataFrame, *, tz: str = "UTC") -> Figure:
    """Element electricity by cause (the avoidable part hatched) and every element run in time.

    ``element_use``: run_start, run_end, element_wh, avoidable_wh, cause.
    """
    fig, axes = _figure(
        "Why the element ran",
        "Left: element electricity per cause, the part a setting could have avoided hatched; "
        "right: each element run in time, one row per cause.",
        width=12, height=4.2, ncols=2)
    ax_k, ax_t = axes[0]
    ax_k.set(title="Element electricity by cause", xlabel="Electricity (kWh)",
             ylabel="Cause (kWh per cause)")
    ax_t.set(title="Element runs", xlabel="Time (local)", ylabel="Cause (one bar per run)")
    if element_use.is_empty():
        _empty(ax_k, "No element use in this period")
        _empty(ax_t, "No element use in this period")
        return fig
    present = [c for c in CAUSE_LABEL if c in set(element_use["cause"].to_list())]
    present += sorted(set(element_use["cause"].drop_nulls().to_list()) - set(present))
    per = element_use.group_by("cause").agg(pl.col("element_wh").sum() / 1000.0,
                                            pl.col("avoidable_wh").sum() / 1000.0)
    kwh = dict(zip(per["cause"].to_list(), per["element_wh"].to_list(), strict=True))
    avoid = dict(zip(per["cause"].to_list(), per["avoidable_wh"].to_list(), strict=True))
    y = np.arange(len(present))[::-1]
    colors = [CAUSE_COLORS.get(c, CAUSE_COLORS["unknown"]) for c in present]
    ax_k.barh(y, [kwh[c] for c in present], color=colors, height=0.7)
    ax_k.barh(y, [avoid[c] or 0.0 for c in present], color="none", edgecolor="#1d1d1f",
              hatch="///", height=0.7, lw=0, label="Avoidable")
    ax_k.set_yticks(y, [CAUSE_LABEL.get(c, c) for c in present])
    ax_k.legend(loc="lower right")
    ax_k.grid(axis="y", visible=False)
    starts = mdates.date2num(_utc(element_use, "run_start"))
    ends = mdates.date2num(_utc(element_use, "run_end"))
    span = max(float(ends.max() - starts.min()), 1.0 / 24.0)
    width = np.maximum(ends - starts, span / 500.0)  # runs of minutes stay visible over weeks
    causes = element_use["cause"].to_numpy()
    for yi, c in zip(y, present, strict=True):
        idx = causes == c
        ax_t.broken_barh(np.column_stack([starts[idx], width[idx]]), (yi - 0.35, 0.7),
                         facecolors=CAUSE_COLORS.get(c, CAUSE_COLORS["unknown"]))
    ax_t.set_yticks(y, ["" for _ in present])
    ax_t.set_ylim(-0.6, len(present) - 0.4)
    ax_t.grid(axis="y", visible=False)
    ax_t.xaxis_date()
    _time_axis(ax_t, tz)
    return fig


# --- hot water available ------------------------------------------------------------------------


@_styled
def hot_water(samples: pl.DataFrame, runouts: pl.DataFrame | None = None, *,
              units: str | Units = "F", tz: str = "UTC", max_points: int = 4000) -> Figure:
    """Hot water available at the delivery temperature over time, run-outs marked.

    ``samples`` (hot_water): received_at, gallons_available, gallons_full, delivery_c.
    ``runouts``: runout_start, draw_end, gallons_short. Long series are averaged into buckets
    (the bucket's lowest value kept, so a run-out's empty tank stays visible); outages break it.
    """
    u = Units.of(units)
    st = samples.sort("received_at") if not samples.is_empty() else samples
    delivery = "the delivery temperature"
    if not st.is_empty() and "delivery_c" in st.columns and st["delivery_c"][0] is not None:
        delivery = f"{u.t(float(st['delivery_c'][0])):.0f} {u.temp}"
    fig, axes = _figure(
        "Hot water available",
        f"Line: hot water the tank could deliver now, mixed to {delivery} at the tap; dashed: "
        "when full; red: run-outs (the outlet below that temperature during a draw).",
        height=3.6)
    ax = axes[0, 0]
    ax.set(ylabel=f"Available ({u.volume} at the tap)", xlabel=f"Local time ({tz})")
    if st.is_empty():
        _empty(ax)
        return fig
    span = st["received_at"].max() - st["received_at"].min()  # type: ignore[operator]
    if st.height > max_points and isinstance(span, timedelta) and span.total_seconds() > 0:
        every = max(60, int(span.total_seconds() / max_points))
        st = st.group_by_dynamic("received_at", every=f"{every}s").agg(
            pl.col("gallons_available").min(), pl.col("gallons_full").max())
        max_gap = timedelta(seconds=3 * every)
    else:
        max_gap = timedelta(minutes=15)
    st = _break_gaps(st, "received_at", max_gap)
    x = _utc(st, "received_at")
    ax.plot(x, u.gal(_f(st, "gallons_available")), color=COLORS["usable"], lw=1.3,
            label="Available")
    ax.plot(x, u.gal(_f(st, "gallons_full")), color="#555555", lw=0.9, ls="--", label="When full")
    ax.set_ylim(bottom=0)
    handles: list[Any] = [Line2D([], [], color=COLORS["usable"], label="Available"),
                          Line2D([], [], color="#555555", ls="--", label="When full")]
    lo = st["received_at"].min()
    ro = runouts.filter(pl.col("draw_end") >= lo) if runouts is not None and \
        not runouts.is_empty() else None
    if ro is not None and not ro.is_empty():
        _spans(ax, _utc(ro, "runout_start"), _utc(ro, "draw_end"), COLORS["warn"], 0.35)
        ax.vlines(_utc(ro, "runout_start"), 0.93, 1.0, transform=ax.get_xaxis_transform(),
                  color=COLORS["warn"], lw=2.0)
        short = float(u.gal(np.nansum(_f(ro, "gallons_short"))))
        handles.append(Patch(color=COLORS["warn"], alpha=0.5,
                             label=f"Run-out ({ro.height}, {short:.0f} {u.volume} short)"))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=len(handles),
              fontsize=8.5, borderaxespad=0.2)
    _time_axis(ax, tz)
    return fig
