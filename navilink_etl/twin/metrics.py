"""The figures of one answer (``M``): total, heat-pump and element kWh, cost under the tariff,
peak-window kWh and run-out minutes, from a run's 60-s ledger (the twin's or the simulator's
ground truth, the same definitions) or from the measured 15-minute slots (the backcast)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..physics import WH_PER_L_K
from .tariff import PriceFn

FIELDS = ("total_kwh", "heat_pump_kwh", "element_kwh", "cost", "peak_kwh", "runout_min")
DEFAULT_DELIVERY_F = 105.0
DEFAULT_PEAK = "16:00-21:00"


@dataclass(frozen=True)
class Window:
    """A daily local window, minutes of the day [start, end) (may cross midnight)."""

    start_min: int
    end_min: int
    tz: str

    def contains(self, t: np.ndarray) -> np.ndarray:
        local = pl.Series("t", (np.asarray(t) * 1e6).astype(np.int64)).cast(pl.Datetime("us", "UTC")) \
            .dt.convert_time_zone(self.tz)
        minute = local.dt.hour().to_numpy().astype(np.int64) * 60 + local.dt.minute().to_numpy()
        if self.start_min < self.end_min:
            return (minute >= self.start_min) & (minute < self.end_min)
        return (minute >= self.start_min) | (minute < self.end_min)


def _cost(t: np.ndarray, wh: np.ndarray, price: PriceFn) -> float | None:
    p = price(t)
    if len(p) and np.isnan(p).all():
        return None
    return float(np.nansum(wh / 1000.0 * p))


def runout_minutes(steps: pl.DataFrame, draws: pl.DataFrame, delivery_c: float) -> float:
    """Minutes of drawing whose delivered water (the minute's mean outflow temperature) is below
    ``delivery_c``: each 60-s row weighted by the seconds its draw ran in it."""
    d = steps.filter(pl.col("draw_l") > 0).select("t_start", "t_end", "draw_l", "draw_wh", "inlet_c", "draw_id")
    if d.height == 0:
        return 0.0
    d = d.join(draws.select("draw_id", pl.col("start").alias("ds"), pl.col("end").alias("de")),
               on="draw_id", how="left")
    overlap = (pl.min_horizontal("t_end", pl.col("de").fill_null(pl.col("t_end")))
               - pl.max_horizontal("t_start", pl.col("ds").fill_null(pl.col("t_start")))).clip(0.0, 60.0)
    outlet = pl.col("inlet_c") + pl.col("draw_wh") / (WH_PER_L_K * pl.col("draw_l"))
    out = d.select((pl.when(outlet < delivery_c).then(overlap).otherwise(0.0)).sum() / 60.0).item()
    return float(out or 0.0)


def run_metrics(steps: pl.DataFrame, draws: pl.DataFrame, price: PriceFn, peak: Window,
                delivery_c: float) -> dict[str, float | None]:
    """``M`` of a run's ledger (t_start/t_end in epoch seconds)."""
    t = steps["t_start"].to_numpy()
    comp = steps["elec_compressor_wh"].to_numpy()
    elem = (steps["elec_upper_wh"] + steps["elec_lower_wh"]).to_numpy()
    total = comp + elem + steps["elec_standby_wh"].to_numpy()
    return {
        "total_kwh": float(total.sum()) / 1000.0,
        "heat_pump_kwh": float(comp.sum()) / 1000.0,
        "element_kwh": float(elem.sum()) / 1000.0,
        "cost": _cost(t, total, price),
        "peak_kwh": float(total[peak.contains(t)].sum()) / 1000.0 if len(t) else 0.0,
        "runout_min": runout_minutes(steps, draws, delivery_c),
    }


def slot_metrics(slots: pl.DataFrame, runout_min: float, price: PriceFn, peak: Window) -> dict[str, float | None]:
    """``M`` of the measured 15-minute slots (int_energy_slots)."""
    t = slots["t"].to_numpy().astype(float)
    total = slots["total_wh"].fill_null(0.0).to_numpy()
    return {
        "total_kwh": float(total.sum()) / 1000.0,
        "heat_pump_kwh": float(slots["compressor_wh"].fill_null(0.0).sum()) / 1000.0,
        "element_kwh": float(slots["element_wh"].fill_null(0.0).sum()) / 1000.0,
        "cost": _cost(t + 450.0, total, price),  # each slot priced at its middle
        "peak_kwh": float(total[peak.contains(t)].sum()) / 1000.0 if len(t) else 0.0,
        "runout_min": runout_min,
    }


def backcast_errors(measured: dict[str, float | None], predicted: dict[str, float | None]) -> dict[str, float]:
    """Relative error |predicted - measured| / measured per figure (0 where both are 0)."""
    out: dict[str, float] = {}
    for k in FIELDS:
        m, p = measured.get(k), predicted.get(k)
        if m is None or p is None:
            continue
        out[k] = abs(p - m) / abs(m) if m else (0.0 if p == 0 else 1.0)
    return out
