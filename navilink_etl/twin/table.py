"""``navilink-etl whatif``'s table output (rich): the backcast, then one row per scenario with
its band."""

from __future__ import annotations

from typing import Any

from .whatif import WhatIfResult

_COLS = (("total_kwh", "total kWh", 2), ("heat_pump_kwh", "heat pump kWh", 2),
         ("element_kwh", "element kWh", 2), ("cost", "cost $", 2), ("peak_kwh", "peak kWh", 2),
         ("runout_min", "run-out min", 1))


def _fmt(v: Any, digits: int) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def render(result: WhatIfResult) -> list[Any]:
    """Renderables: a header line, the answer table, and the notes."""
    from rich.table import Table
    from rich.text import Text

    p = result.params
    head = Text.assemble(
        (f"{result.device}", "bold"), f"  {result.first_day} .. {result.last_day} ({result.timezone})  ",
        f"tariff: {result.tariff}  peak window: {result.peak_window}  delivery: {result.delivery_f:g} degF")
    table = Table(title="What would change (± the band from the backcast error)", title_justify="left")
    table.add_column("scenario")
    for _, label, _ in _COLS:
        table.add_column(label, justify="right")
    for name, m in (("measured", result.backcast_measured), ("backcast (twin)", result.backcast_predicted)):
        table.add_row(name, *(_fmt(m.get(k), d) for k, _, d in _COLS), style="dim" if name == "measured" else None)
    for s in result.scenarios:
        cells = []
        for k, _, d in _COLS:
            v, (lo, hi) = s.predicted.get(k), s.band.get(k, [None, None])
            half = max(v - lo, hi - v) if v is not None and lo is not None and hi is not None else None
            cells.append(_fmt(v, d) + (f" ±{_fmt(half, d)}" if half is not None else ""))
        table.add_row(s.name, *cells)
    err = ", ".join(f"{k.replace('_kwh', '')} {v * 100:.1f} %" for k, v in result.errors.items()
                    if k in ("total_kwh", "heat_pump_kwh", "element_kwh"))
    fitted = result.fitted_params
    notes = [
        f"backcast error (twin vs measured): {err}; cycles {result.backcast_measured.get('cycles')} measured, "
        f"{result.backcast_predicted.get('cycles')} predicted. Bands: +- that error (at least 2 %, element "
        "0.3 kWh/week, run-out 20 % or 10 min/week).",
        f"twin: capacity {p.capacity_wh_per_k:.0f} Wh/K, UA {p.ua_w_per_k:.2f} W/K, element {p.element_w:.0f} W, "
        f"inlet {p.inlet_c:.1f} degC, COP scale {p.cop_factor:.3f}"
        + (f" (fitted {fitted.cop_factor:.3f}, calibrated on the backcast)" if fitted and fitted.cop_factor != p.cop_factor else "")
        + f"; parameters from {p.source}.",
        "measured run-out minutes: draws whose estimated outlet (draws mart) is below the delivery "
        "temperature; the twin's: the minutes its outflow is below it.",
        *p.notes,
        *(result.inputs.notes if result.inputs is not None else ()),
    ]
    return [head, table, *(Text(n, style="dim") for n in notes)]
