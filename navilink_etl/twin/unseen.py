"""The draws the ``draws`` mart cannot see, put back where they happened.

The mart finds a draw only when a sample lands in it (``dhwUse``): a sink draw of 7-30 s between
two 30-s polls is never seen. Its energy still shows: the device reports its stored energy every
poll (4 Wh counts), and in standby that falls only by the standby loss (UA x (tank - room), under
1 Wh per 30 s), while a sink draw takes 20-150 Wh. So every sample interval outside the mart's
draws whose stored energy fell by more than the loss explains, beyond the counts' resolution and
the UA's error, held a draw: a micro-draw is replayed there (its energy the drop less the loss,
its volume at the outlet estimate of the draws mart, a faucet's flow).

While a heat source runs the drop is masked by the heat going in; that heat is estimated from the
metered compressor and element Wh (compressor x the COP map x the device's COP factor, the map
read as ``sim/plant.py`` reads it) and only inside steady runs (the same sources on at both ends
of the interval and of its neighbours: no relay switch, whose misaligned power would read as a
draw). docs/metrics.md 6 and 6.1 give what this recovers on the simulator.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..cop import cop
from ..physics import WH_PER_L_K
from .params import TwinParams

COUNT_WH = 4.0  # the energy fields' resolution: one count
LOSS_REL_ERR = 0.3  # the UA and the (thermistor-mean) tank-room difference, relative
HEAT_REL_ERR = 0.1  # metered compressor Wh x the scaled map (and element Wh), relative
FAUCET_LPM = 4.7  # a sink's flow, 1.25 gpm
OUTLET_MEMORY_S = 3 * 3600.0  # the draws mart's outlet estimate (int_draw_base)
OUTLET_COOLING_K_PER_H = 0.5


@dataclass
class Unseen:
    draws: list[tuple[float, float, float, str]]  # (start, duration s, L/min, "unseen")
    energy_wh: float  # their energy in total
    heating_wh: float  # ... of which found while a heat source ran


def threshold_wh(loss_wh: float, heat_wh: float) -> float:
    """The drop beyond what the interval's loss and heat explain that counts as a draw: two counts
    (each reading is rounded to one), plus the loss's and the heat estimate's errors."""
    return 2.0 * COUNT_WH + LOSS_REL_ERR * abs(loss_wh) + HEAT_REL_ERR * heat_wh


def _outlet(t: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The hottest upper-thermistor reading of the last 3 h less 0.5 K per hour since (as the
    draws mart's ``outlet_estimate_c``)."""
    out = np.empty(len(t))
    k = upper + t / 3600.0 * OUTLET_COOLING_K_PER_H
    window: deque[int] = deque()  # a running maximum of k over the last 3 h
    for i in range(len(t)):
        while window and k[window[-1]] <= k[i]:
            window.pop()
        window.append(i)
        while t[window[0]] < t[i] - OUTLET_MEMORY_S:
            window.popleft()
        out[i] = max(upper[i], k[window[0]] - t[i] / 3600.0 * OUTLET_COOLING_K_PER_H)
    return out


def find_unseen(con: Any, params: TwinParams, a: datetime, b: datetime, *,
                heating: bool = True) -> Unseen:
    """The micro-draws of ``params.device`` from ``a`` to ``b`` (UTC) from ``int_intervals``;
    ``heating``: also inside steady heating runs."""
    s = con.sql("""
        select epoch(sample_at) as t, sum(duration_s) as dur, any_value(capped) as capped,
            any_value(stored_wh) as e0, any_value(end_stored_wh) as e1,
            any_value(energy_to_setpoint_wh) as d0, any_value(end_energy_to_setpoint_wh) as d1,
            any_value(setpoint_c) as sp0, any_value(end_setpoint_c) as sp1,
            any_value(tank_mean_c) as mean_c, any_value(tank_upper_c) as upper_c,
            any_value(ambient_c) as room_c, any_value(compressor_on) as comp,
            any_value(element_on) as el, any_value(drawing) as drawing,
            any_value(power_source) as power_source,
            sum(compressor_wh) as comp_wh, sum(element_wh) as el_wh
        from int_intervals where device = $d and sample_at >= $a and sample_at < $b
        group by sample_at order by sample_at
    """, params={"d": params.device, "a": a, "b": b}).pl()
    if s.height < 3:
        return Unseen([], 0.0, 0.0)
    t = s["t"].to_numpy().astype(float)
    dur = s["dur"].fill_null(0.0).to_numpy().astype(float)
    e0, e1 = (s[c].cast(float).to_numpy() for c in ("e0", "e1"))
    d0 = s["d0"].cast(float).to_numpy()
    mean_c, upper_c, room_c = (s[c].cast(float).to_numpy() for c in ("mean_c", "upper_c", "room_c"))
    comp = s["comp"].fill_null(False).to_numpy().astype(bool)
    el = s["el"].fill_null(False).to_numpy().astype(bool)
    drawing = s["drawing"].fill_null(False).to_numpy().astype(bool)
    comp_wh = s["comp_wh"].fill_null(0.0).to_numpy().astype(float)
    el_wh = s["el_wh"].fill_null(0.0).to_numpy().astype(float)
    n = len(t)
    nxt = np.append(drawing[1:], False)  # the mart's draw starts at the sample before it
    ok = (~drawing & ~nxt & ~s["capped"].fill_null(True).to_numpy().astype(bool)
          & np.isfinite(e0) & np.isfinite(e1) & np.isfinite(mean_c) & np.isfinite(room_c)
          & (s["sp0"].cast(float).to_numpy() == s["sp1"].cast(float).to_numpy()) & (dur > 0))
    loss = params.ua_w_per_k * (mean_c - room_c) * dur / 3600.0
    # the heat in: only in steady runs (same sources at this sample, the one before and after)
    src = comp.astype(int) + 2 * el.astype(int)
    steady = np.zeros(n, dtype=bool)
    steady[1:-1] = (src[1:-1] == src[:-2]) & (src[1:-1] == src[2:])
    measured = (s["power_source"].fill_null("rated").to_numpy() != "rated")
    idle = src == 0
    heat = np.zeros(n)
    if heating:
        cap = params.capacity_wh_per_k
        tank_mean = np.where(np.isfinite(d0) & (d0 > 0), s["sp0"].cast(float).to_numpy() - d0 / cap, mean_c)
        map_c = 0.5 * (tank_mean + (tank_mean * 12.0 - 7.0 * upper_c) / 5.0)  # mean and condenser zone
        cop_now = np.array([cop(m, r) if np.isfinite(m) and np.isfinite(r) else np.nan
                            for m, r in zip(map_c, room_c, strict=True)]) * params.cop_factor
        heat = np.where(comp, comp_wh * cop_now, 0.0) + np.where(el, el_wh, 0.0)
        usable = idle | (steady & measured & np.isfinite(heat) & np.isfinite(d0) & (d0 > 0)
                         & np.isfinite(s["d1"].cast(float).to_numpy()) & (s["d1"].cast(float).to_numpy() > 0))
    else:
        usable = idle
    heat = np.nan_to_num(heat)
    excess = (e0 - e1) + heat - loss
    found = ok & usable & (excess > np.array([threshold_wh(lo, h) for lo, h in zip(loss, heat, strict=True)]))
    if not found.any():
        return Unseen([], 0.0, 0.0)
    outlet = _outlet(t, np.nan_to_num(upper_c, nan=float(np.nanmean(upper_c))))
    draws: list[tuple[float, float, float, str]] = []
    total = in_heat = 0.0
    for i in np.flatnonzero(found):
        month = datetime.fromtimestamp(t[i], UTC).month
        rise = max(5.0, outlet[i] - params.inlet_at_month(month))
        vol = excess[i] / (WH_PER_L_K * rise)
        length = min(vol / FAUCET_LPM * 60.0, 0.8 * dur[i])
        start = t[i] + (dur[i] - length) / 2.0  # somewhere in the interval: its middle
        draws.append((float(start), float(length), float(vol / length * 60.0), "unseen"))
        total += float(excess[i])
        if not idle[i]:
            in_heat += float(excess[i])
    return Unseen(draws, total, in_heat)
