"""The twin's parameters for one device: the ``device_model`` fit when the warehouse has it (the
latest ``as_of``), else ``int_device_models`` (UA, capacity, COP factor) with the element power
measured from the samples and the inlet from the settings.

The inlet: a configured one (``NAVILINK_INLET_TEMPERATURE_F`` set by the user) wins, capped month
by month by the lower thermistor's lowest reading in a draw (``int_draw_inlet``: it never reads
below the inlet); without one, the fitted monthly inlet (``device_inlet_monthly``: the lower end of
those readings, extrapolated; 0.3-1.3 K high for 50-65 gal tanks on the simulator, but it can
read below the inlet)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError
from .db import dicts, one, rows

DEFAULT_ELEMENT_W = 5000.0  # 240 V rating (sim/plant.py ELEMENT_W)


@dataclass(frozen=True)
class TwinParams:
    device: str
    capacity_wh_per_k: float
    ua_w_per_k: float
    cop_factor: float
    element_w: float
    inlet_c: float
    source: str  # device_model | int_device_models
    se: dict[str, float | None] = field(default_factory=dict)  # standard errors when fitted
    inlet_monthly: dict[int, float] = field(default_factory=dict)  # month -> degC (device_model)
    notes: tuple[str, ...] = ()

    def inlet_at_month(self, month: int) -> float:
        return self.inlet_monthly.get(month, self.inlet_c)


def _has(con: Any, table: str) -> bool:
    t = one(con, "select count(*) from duckdb_tables() where table_name = ?", [table])
    v = one(con, "select count(*) from duckdb_views() where view_name = ?", [table])
    return bool(t and t[0]) or bool(v and v[0])


def _ok(x: Any) -> bool:
    """A usable positive number (DuckDB may hand back DECIMAL as ``Decimal``)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return False
    return math.isfinite(v) and v > 0


def measured_element_w(con: Any, device: str, start: Any = None, end: Any = None) -> float | None:
    """Median element power over the sample intervals an element ran with a measured reading
    (``int_intervals.element_w``: the aligned whole-unit power less the controls and, in
    hybrid runs, the compressor's share)."""
    where = "device = $device"
    params: dict[str, Any] = {"device": device}
    if start is not None:
        where += " and interval_start >= $start"
        params["start"] = start
    if end is not None:
        where += " and interval_start < $end"
        params["end"] = end
    row = one(con, f"""
        select median(element_w), count(*) from int_intervals
        where {where} and element_on and power_source <> 'rated' and element_w > 1000
    """, params)
    return float(row[0]) if row and row[1] and row[1] >= 3 else None


def lowest_draw_readings(con: Any, device: str) -> dict[int, float]:
    """Month -> the lower thermistor's lowest reading in a draw (``int_draw_inlet``, away from
    gaps): the water there never reads below the inlet, so this bounds any inlet from above. (The
    fitted ``device_inlet_monthly`` is not a bound: it extrapolates the lowest readings below the
    lowest, and reads up to 2.4 K under the true inlet on the simulator.)"""
    if not _has(con, "int_draw_inlet"):
        return {}
    return {int(m): float(c) for m, c in rows(con, """
        select month(local_day), min(lower_min_c) from int_draw_inlet
        where device = ? and lower_min_c is not null and not coalesce(at_gap, false) group by 1
    """, [device])}


def configured_inlet_c(config: Any) -> float | None:
    """The inlet the user configured (degC), None when ``inlet_temperature_f`` is the default."""
    if "inlet_temperature_f" not in getattr(config, "model_fields_set", ()):
        return None
    return (float(config.inlet_temperature_f) - 32.0) / 1.8


def _inlet(configured: float | None, fitted: float | None, default: float) -> float:
    """A configured inlet; else the fitted; else the default."""
    if configured is not None:
        return configured
    return fitted if fitted is not None else default


def load_params(con: Any, device: str, start: Any = None, end: Any = None,
                inlet_c: float | None = None) -> TwinParams:
    """Parameters of ``device`` from the open warehouse ``con`` (``start``/``end``: the period the
    element power is measured over when the fit does not give it). ``inlet_c``: the inlet the
    user configured (``configured_inlet_c``), capped by the lowest lower-thermistor reading in a draw (``lowest_draw_readings``)."""
    inlet_default = float((one(con, "select inlet_c from settings") or (14.0,))[0])
    if inlet_c is not None:
        inlet_default = inlet_c
    if _has(con, "device_model"):
        cols = {r[0] for r in rows(con, "select column_name from duckdb_columns() "
                                   "where table_name = 'device_model'")}
        order = "order by as_of desc" if "as_of" in cols else ""
        found = dicts(con, f"select * from device_model where device = ? {order} limit 1", [device])
        if found:
            r = found[0]
            monthly: dict[int, float] = {}
            notes: list[str] = []
            if inlet_c is None and _has(con, "device_inlet_monthly"):
                for month, c in rows(con, "select month, inlet_c from device_inlet_monthly "
                                     "where device = ? and inlet_c is not null", [device]):
                    monthly[int(month if isinstance(month, int) else month.month)] = float(c)
            if inlet_c is not None:
                for m, low in lowest_draw_readings(con, device).items():
                    monthly[m] = min(inlet_c, low)
                    if low < inlet_c:
                        notes.append(f"configured inlet {inlet_c:.1f} degC is above the lower thermistor's "
                                     f"lowest reading in a draw in month {m}: {low:.1f} degC used")
            if inlet_c is None and (monthly or _ok(r.get("inlet_c"))):
                notes.append("inlet fitted from the draws (0.3-1.3 K high for 50-65 gal tanks on the "
                             "simulator, 3-4 K for 80 gal): set NAVILINK_INLET_TEMPERATURE_F to a measured value for a closer twin")
            el: float = float(r["element_w"]) if _ok(r.get("element_w")) else (
                measured_element_w(con, device, start, end) or DEFAULT_ELEMENT_W)
            inlet: Any = r.get("inlet_c")
            return TwinParams(
                device=device, capacity_wh_per_k=float(r["capacity_wh_per_k"]),
                ua_w_per_k=float(r["ua_w_per_k"]),
                cop_factor=float(r["cop_factor"]) if _ok(r.get("cop_factor")) else 1.0,
                element_w=el, inlet_c=_inlet(inlet_c, float(inlet) if _ok(inlet) else None, inlet_default),
                source="device_model",
                se={k[:-3]: float(r[k]) if r[k] is not None else None for k in r if k.endswith("_se")},
                inlet_monthly=monthly, notes=tuple(notes))
    model = one(con, "select ua_w_per_k, capacity_wh_per_k, cop_factor from int_device_models "
                "where device = ?", [device])
    if model is None:
        raise ConfigurationError(f"no fitted model for device {device}: it has no data in the "
                                 "warehouse (run `navilink-etl refresh`, or check --device)", device=device)
    ua, cap, cop = model
    measured = measured_element_w(con, device, start, end)
    el_notes = () if measured is not None else (f"element power not measured: the {DEFAULT_ELEMENT_W:.0f} W rating",)
    return TwinParams(device=device, capacity_wh_per_k=float(cap), ua_w_per_k=float(ua),
                      cop_factor=float(cop) if _ok(cop) else 1.0,
                      element_w=measured if measured is not None else DEFAULT_ELEMENT_W,
                      inlet_c=inlet_default, source="int_device_models", notes=el_notes)
