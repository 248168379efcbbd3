"""The report's "What would change" section: the standard what-ifs for the last week of the
report period (setpoint 10 degF lower, heat pump only, and a 16:00-21:00 peak shift when the
tariff is time-of-use), each with kWh, cost, run-out minutes and the band from the backcast."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..errors import NaviLinkError
from ..twin.whatif import WhatIfResult, whatif
from .charts import COLORS, _figure, _styled
from .html import Table

SECTION = "What would change"
INTRO = ("A twin of this heater (its fitted tank, heat loss, heat pump and element, driven by the "
         "draws and room temperature measured in the week below) replayed as it ran (the backcast, "
         "checked against what was measured) and with one setting changed.")
WEEK_DAYS = 7  # the replay covers at most the report period's last week: the report stays fast

log = logging.getLogger(__name__)


def answer(config: Any, con: Any, device: str, start: date, end: date,
           progress: Callable[[str], None] | None = None) -> WhatIfResult | None:
    """The standard what-ifs for the last week of ``start``..``end``; None (logged) when the data
    cannot carry a twin (too few samples, no fitted model)."""
    first = max(start, end - timedelta(days=WEEK_DAYS - 1))
    try:
        return whatif(config, device=device, start=first, end=end, con=con, progress=progress)
    except NaviLinkError as exc:
        log.warning("%s: no what-if section (%s)", device, exc)
        return None


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:,.2f}"


def table(r: WhatIfResult) -> Table:
    """Measured, backcast and each scenario: kWh, cost, run-out minutes, with the band."""
    rows: list[list[object]] = []
    for name, m in (("measured", r.backcast_measured), ("twin, as it ran (backcast)", r.backcast_predicted)):
        rows.append([name, f"{m['total_kwh']:.1f}", f"{m['heat_pump_kwh']:.1f}", f"{m['element_kwh']:.1f}",
                     _money(m["cost"]), f"{m['peak_kwh']:.1f}", f"{m['runout_min']:.0f}", ""])
    for s in r.scenarios:
        p, b = s.predicted, s.band
        lo, hi = b["total_kwh"]
        clo, chi = b["cost"]
        rows.append([s.name, f"{p['total_kwh']:.1f}", f"{p['heat_pump_kwh']:.1f}", f"{p['element_kwh']:.1f}",
                     _money(p["cost"]), f"{p['peak_kwh']:.1f}", f"{p['runout_min']:.0f}",
                     f"{lo:.1f}-{hi:.1f} kWh, {_money(clo)}-{_money(chi)}" if lo is not None and hi is not None else ""])
    return Table(["", "total kWh", "heat pump kWh", "element kWh", "cost", f"kWh {r.peak_window}",
                  f"run-out min (<{r.delivery_f:.0f} °F)", "band"], rows)


def notes(r: WhatIfResult) -> list[str]:
    err = r.errors
    p = r.params
    out = [
        f"Period replayed: {r.first_day} to {r.last_day} ({r.timezone}); tariff: {r.tariff}.",
        f"Backcast error: total {err.get('total_kwh', 0) * 100:.1f} %, element "
        f"{err.get('element_kwh', 0) * 100:.1f} %; the bands are that error (at least 2 %; element at "
        "least 0.3 kWh/week; run-out 20 % or 10 min/week).",
        f"Twin: {p.capacity_wh_per_k:.0f} Wh/K, UA {p.ua_w_per_k:.2f} W/K, element {p.element_w:.0f} W, "
        f"COP scale {p.cop_factor:.2f} (calibrated on the backcast), parameters from {p.source}.",
        "Small draws that hide between samples are missing from the replay, and the outlet is read by "
        "the upper thermistor: see docs/metrics.md for what that costs in accuracy.",
    ]
    if not any(s.settings.get("shift") for s in r.scenarios):
        out.append("No peak-shift what-if: the tariff is not time-of-use (set NAVILINK_TARIFF=tou).")
    return out


@_styled
def chart(r: WhatIfResult) -> Figure:
    """Horizontal bars: kWh by source for the measured week, the backcast and each scenario, with
    the band as an error bar; cost and run-out minutes as labels."""
    fig, axes = _figure(
        "What would change (the period's last week at most)",
        "Bars: kWh by source over the replayed days; whiskers: the band from the backcast error; "
        "run-out: minutes of hot water below the delivery temperature.",
        height=1.4 + 0.55 * (2 + len(r.scenarios)))
    ax = axes[0, 0]
    items: list[tuple[str, dict[str, float | None], list[float | None] | None]] = [
        ("measured", r.backcast_measured, None), ("backcast (twin)", r.backcast_predicted, None)]
    items += [(s.name, s.predicted, s.band["total_kwh"]) for s in r.scenarios]
    y = np.arange(len(items))[::-1]
    for yi, (_, m, band) in zip(y, items, strict=True):
        hp, el = m["heat_pump_kwh"] or 0.0, m["element_kwh"] or 0.0
        total = m["total_kwh"] or 0.0
        ax.barh(yi, hp, color=COLORS["heat_pump"], label="Heat pump" if yi == y[0] else None)
        ax.barh(yi, el, left=hp, color=COLORS["element"], label="Element" if yi == y[0] else None)
        ax.barh(yi, max(0.0, total - hp - el), left=hp + el, color=COLORS["standby"],
                label="Standby" if yi == y[0] else None)
        right = total
        if band is not None and band[0] is not None and band[1] is not None:
            ax.errorbar(total, yi, xerr=[[total - band[0]], [band[1] - total]], color="#333333", capsize=3)
            right = band[1]
        cost = "-" if m["cost"] is None else f"${m['cost']:.2f}"
        ax.text(right, yi, f"  {total:.1f} kWh, {cost}, run-out {m['runout_min'] or 0:.0f} min",
                va="center", fontsize=9)
    ax.set_yticks(y, [i[0] for i in items])
    ax.set_xlabel(f"Electricity, {r.first_day:%d %b} to {r.last_day:%d %b} (kWh)")
    xmax = max(((i[2][1] if i[2] and i[2][1] is not None else i[1]["total_kwh"]) or 0.0) for i in items)
    ax.set_xlim(0, xmax * 1.6 + 1e-9)
    ax.legend(loc="upper right", ncols=3, bbox_to_anchor=(1.0, 1.12))
    return fig
