"""The inlet calibrated through the replay, for a household whose user did not configure one.

The draws mart gives each seen draw's energy; the twin turns it into a volume at (outlet - inlet),
so an inlet too high gives too much volume: the thermocline moves too far and the twin's lower
thermistor cools more, and for longer, than the heater's did. The fitted inlet
(``device_inlet_monthly``) reads high (0.3-1.3 K on 50-65 gal tanks, 3-5.5 K on 80 gal and in
some conditioned rooms), so it is roughly an upper bound: ``calibrate_inlet`` searches
[fitted - SEARCH_K, fitted + up_k] (golden section; ``up_k`` from the caller: 0, or room up to
the lowest lower-thermistor reading in a draw for a fitted inlet that reads low) for the offset whose backcast's lower thermistor
follows the measured one best at the samples during the seen draws and up to AFTER_S after them
(RMS), the inlet shifted alike in every month. The unseen draws keep their volumes during the
search; the caller re-reads the inputs at the inlet found."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np

from ..physics import WH_PER_L_K
from .inputs import TwinInputs
from .params import TwinParams
from .replay import replay

SEARCH_K = 8.0  # how far below the fitted inlet the search goes
AFTER_S = 3600.0  # samples up to this long after a seen draw count
TOL_K = 0.7  # the search stops when the bracket is this narrow
MIN_SAMPLES = 20  # fewer samples around draws: no calibration
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class InletFit:
    offset_k: float  # found - fitted (<= 0)
    rms_k: float  # the lower thermistor's mismatch at the best point evaluated
    replays: int
    samples: int
    seconds: float  # wall time of the search


def shifted(params: TwinParams, offset_k: float) -> TwinParams:
    """``params`` with the inlet (and every monthly one) moved by ``offset_k``."""
    return replace(params, inlet_c=params.inlet_c + offset_k,
                   inlet_monthly={m: c + offset_k for m, c in params.inlet_monthly.items()})


def draws_at(params: TwinParams, inputs: TwinInputs) -> list[tuple[float, float, float, str]]:
    """The replay's draws with the seen ones' volumes at ``params``' inlet (as ``read_inputs``)."""
    out = [d for d in inputs.draws if d[3] != "inferred"]
    for start, dur, wh, outlet in inputs.seen:
        rise = max(5.0, outlet - params.inlet_at_month(datetime.fromtimestamp(start, UTC).month))
        out.append((start, dur, wh / (WH_PER_L_K * rise) / dur * 60.0, "inferred"))
    return sorted(out)


def draw_window_mask(inputs: TwinInputs) -> np.ndarray:
    """The measured lower-thermistor samples in the period during a seen draw or AFTER_S after it."""
    t = inputs.lower_t
    mask = np.zeros(len(t), dtype=bool)
    if not len(t):
        return mask
    for start, dur, _wh, _outlet in inputs.seen:
        a = np.searchsorted(t, start, side="left")
        b = np.searchsorted(t, start + dur + AFTER_S, side="right")
        mask[a:b] = True
    return mask & (t >= inputs.t0) & (t < inputs.t1)


def mismatch(params: TwinParams, inputs: TwinInputs, mask: np.ndarray) -> float:
    """RMS (K) of the backcast's lower thermistor less the measured one at the masked samples
    (the twin's minute-end readings interpolated to each sample's time: the minute-end before
    it would lag a falling reading by up to a minute and bias the inlet low)."""
    run = replay(params, inputs, draws=draws_at(params, inputs))
    t_end = run.steps["t_end"].to_numpy()
    low = run.steps["tank_lower_c"].to_numpy()
    ts, meas = inputs.lower_t[mask], inputs.lower_c[mask]
    ok = (ts >= t_end[0]) & (ts <= t_end[-1]) if len(t_end) else np.zeros(len(ts), dtype=bool)
    diff = np.interp(ts[ok], t_end, low) - meas[ok]
    return float(np.sqrt(np.mean(diff * diff))) if len(diff) else math.inf


def calibrate_inlet(params: TwinParams, inputs: TwinInputs, up_k: float = 0.0) -> InletFit | None:
    """The offset on the fitted inlet in [-SEARCH_K, up_k] that minimises ``mismatch`` (golden
    section to TOL_K, then the vertex of a parabola through the best three). None when the period has too few samples around seen draws."""
    wall = time.perf_counter()
    mask = draw_window_mask(inputs)
    if int(mask.sum()) < MIN_SAMPLES:
        return None
    cache: dict[float, float] = {}

    def f(x: float) -> float:
        if x not in cache:
            cache[x] = mismatch(shifted(params, x), inputs, mask)
        return cache[x]

    lo, hi = -SEARCH_K, max(0.0, up_k)
    c, d = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    while hi - lo > TOL_K:
        if f(c) <= f(d):
            hi, d = d, c
            c = hi - GOLDEN * (hi - lo)
        else:
            lo, c = c, d
            d = lo + GOLDEN * (hi - lo)
    best = min(cache, key=lambda k: cache[k])
    return InletFit(offset_k=vertex(cache, best, lo, hi), rms_k=cache[best], replays=len(cache),
                    samples=int(mask.sum()), seconds=time.perf_counter() - wall)


def vertex(cache: dict[float, float], best: float, lo: float, hi: float) -> float:
    """The minimum of the parabola through the best point and its two nearest evaluated
    neighbours, kept within [lo, hi] (the bracket left); ``best`` when they do not bracket it."""
    xs = sorted(cache)
    i = xs.index(best)
    if i == 0 or i == len(xs) - 1:
        return best
    (x0, x1, x2) = xs[i - 1:i + 2]
    y0, y1, y2 = cache[x0], cache[x1], cache[x2]
    den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
    if den >= 0:  # (x1 - x0)(y1 - y2) < 0 < (x1 - x2)(y1 - y0) when y1 is the lowest
        return best
    x = x1 - 0.5 * ((x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)) / den
    return float(min(max(x, lo), hi))
