"""What the twin replays for one device and period, read from the warehouse: the inferred draws
(``draws`` mart: times and energy; volumes at the twin's inlet), the room temperature (measured
ambient away from heat-pump runs, which pull the room down; that pull-down fitted separately),
the tank's state at the start, the settings the heater had, and the measured energy to compare."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from ..errors import ConfigurationError
from ..physics import WH_PER_L_K
from .db import one
from .params import TwinParams
from .unseen import Unseen, find_unseen

ROOM_SETTLED_S = 3600.0  # compressor off this long: the ambient reading is the room's own
COOLING_TAU_S = 2700.0  # the heat pump's pull-down of its room (first order, as the simulator)
ROOM_KNOT_S = 7200.0  # the room's own variation: a linear spline with a knot every 2 h
KNOT_PHASES = 4
MIN_DRAW_WH = 10.0
SPIN_UP_S = 48 * 3600.0  # a full tank at most this long before the period starts the replay there


@dataclass
class TwinInputs:
    device: str
    tz: str
    t0: float  # epoch s: the figures count from here (first sample of the period)
    t1: float  # ... and ends here (end of the last day, or the last sample)
    first_day: date
    last_day: date
    draws: list[tuple[float, float, float, str]]  # (start, duration s, L/min, kind)
    draw_energy_wh: float  # the draws mart's energy over the period
    room_t: np.ndarray
    room_c: np.ndarray
    cooling_k: float
    initial_c: list[float]
    settings: list[tuple[float, int, int]]  # (t, setpoint half-degC, mode 1-5), first at t0
    slots: pl.DataFrame  # measured 15-min slots: t (epoch), compressor_wh, element_wh, standby_wh, total_wh
    measured_cycles: int
    measured_runout_min: float
    samples: int
    notes: list[str] = field(default_factory=list)
    spin_from: float | None = None  # epoch s: the replay starts here (a full tank before t0), or None
    unseen_wh: float = 0.0  # energy of the micro-draws put back (twin/unseen.py), in ``draws``
    unseen_heating_wh: float = 0.0  # ... of which found while a heat source ran
    # the seen draws before their volume: (start, duration s, energy Wh, outlet degC), as in ``draws``
    seen: list[tuple[float, float, float, float]] = field(default_factory=list)
    lower_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # measured lower thermistor:
    lower_c: np.ndarray = field(default_factory=lambda: np.zeros(0))  # epoch s, degC (from spin_from)


def local_bounds(first: date, last: date, tz: str) -> tuple[float, float]:
    zone = ZoneInfo(tz)
    a = datetime(first.year, first.month, first.day, tzinfo=zone)
    b = datetime(last.year, last.month, last.day, tzinfo=zone) + timedelta(days=1)
    return a.timestamp(), b.timestamp()


def default_period(con: Any, device: str, tz: str, days: int = 7) -> tuple[date, date]:
    """The last ``days`` local days with data (from the stored per-day table: reading the
    ``stg_status`` view would deduplicate the device's whole history)."""
    row = one(con, "select min(first_sample_at), max(last_sample_at) from int_day_energy "
              "where device = ?", [device])
    if row is None or row[0] is None:
        row = one(con, "select min(received_at), max(received_at) from stg_status where device = ?",
                  [device])
    if row is None or row[0] is None:
        raise ConfigurationError(f"device {device} has no status samples", device=device)
    first = row[0].astimezone(ZoneInfo(tz)).date()
    last = row[1].astimezone(ZoneInfo(tz)).date()
    return max(first, last - timedelta(days=days - 1)), last


def _ffill_time(t: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each sample, the last time at or before it where ``mask`` held (-inf if never)."""
    marks = np.where(mask, t, -np.inf)
    return np.maximum.accumulate(marks) if len(marks) else marks


def pull_down_unit(t: np.ndarray, comp: np.ndarray) -> np.ndarray:
    """The heat pump's pull-down of its room at each reading, per K of steady pull-down: first
    order toward 1 while the compressor runs, toward 0 while it is off (as the simulator)."""
    p = np.zeros(len(t))
    if len(t) < 2:
        return p
    decay = np.exp(-np.diff(t) / COOLING_TAU_S)
    target = comp[:-1].astype(float)
    for i in range(1, len(t)):
        p[i] = target[i - 1] + (p[i - 1] - target[i - 1]) * decay[i - 1]
    return p


def _spline_residuals(idx: np.ndarray, f: np.ndarray, n: int, y: np.ndarray) -> np.ndarray:
    """``y`` less its least-squares fit by the linear spline whose row i is (1 - f) at knot idx and
    f at idx + 1 (tridiagonal normal equations, solved by the Thomas algorithm)."""
    w0, w1 = 1.0 - f, f
    diag = np.bincount(idx, w0 * w0, n) + np.bincount(idx + 1, w1 * w1, n) + 1e-9
    off = np.bincount(idx, w0 * w1, n)[:-1]
    rhs = np.stack([np.bincount(idx, w0 * y[:, j], n) + np.bincount(idx + 1, w1 * y[:, j], n)
                    for j in range(y.shape[1])], axis=1)
    c = np.zeros(n)
    d = rhs.copy()
    c[0] = off[0] / diag[0] if n > 1 else 0.0
    d[0] /= diag[0]
    for i in range(1, n):
        m = diag[i] - (off[i - 1] * c[i - 1])
        if i < n - 1:
            c[i] = off[i] / m
        d[i] = (d[i] - off[i - 1] * d[i - 1]) / m
    for i in range(n - 2, -1, -1):
        d[i] -= c[i] * d[i + 1]
    return y - (w0[:, None] * d[idx] + w1[:, None] * d[idx + 1])


def fit_pull_down(t: np.ndarray, ambient: np.ndarray, comp: np.ndarray, unit: np.ndarray) -> float | None:
    """Least squares K in ambient = room(t) - K x unit, the room a linear spline with knots every
    ROOM_KNOT_S (its own swings are slower than the 45-min pull-down, so the compressor's starts and
    stops identify K, whatever the room does over hours); averaged over KNOT_PHASES shifts of the
    knots so no one knot grid decides. None without enough compressor starts/stops to tell."""
    switches = int(np.count_nonzero(np.diff(comp.astype(np.int8))))
    if len(t) < 50 or unit.max() < 0.3 or switches < 4:
        return None
    out = []
    for k in range(KNOT_PHASES):
        knots = np.arange(t[0] - k * ROOM_KNOT_S / KNOT_PHASES, t[-1] + ROOM_KNOT_S, ROOM_KNOT_S)
        idx = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, len(knots) - 2)
        f = (t - knots[idx]) / ROOM_KNOT_S
        # Frisch-Waugh: K = the regression of the ambient's residual on the unit's residual, both
        # after the spline (its normal equations are tridiagonal: any period length, little memory)
        res = _spline_residuals(idx, f, len(knots), np.column_stack([ambient, unit]))
        uu = float(res[:, 1] @ res[:, 1])
        if uu <= 1e-9:
            return None
        out.append(-float(res[:, 0] @ res[:, 1]) / uu)
    return float(np.mean(out))


def room_series(t: np.ndarray, ambient: np.ndarray, comp: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(times, room degC, pull-down K): the pull-down fitted on every reading (``fit_pull_down``),
    the room = each reading plus the modelled pull-down at it; without a fit (too few compressor
    starts), the readings taken with the compressor off for an hour and K = 0."""
    ok = np.isfinite(ambient)
    t, ambient, comp = t[ok], ambient[ok], comp[ok].astype(bool)
    if len(t) == 0:
        return np.array([0.0]), np.array([20.0]), 0.0
    unit = pull_down_unit(t, comp)
    k = fit_pull_down(t, ambient, comp, unit)
    cooling = float(np.clip(k, 0.0, 3.0)) if k is not None else 0.0
    if cooling > 0.0:
        # the room keeps its own swings during long runs too (not just a line between settled readings)
        return t, ambient + cooling * unit, cooling
    since_on = t - _ffill_time(t, comp)
    settled = ~comp & (since_on >= ROOM_SETTLED_S)
    if settled.sum() < 10:
        settled = ~comp if (~comp).sum() >= 10 else np.ones(len(t), dtype=bool)
    return t[settled], ambient[settled], 0.0


def initial_profile(upper_c: float, lower_c: float, n: int = 12, upper_node: int = 8,
                    lower_node: int = 2, mean_c: float | None = None,
                    floor_c: float | None = None) -> list[float]:
    """Node temperatures (bottom first) through the two thermistors, flat beyond them. With the
    tank's mean (``mean_c``: the device's energy-to-setpoint field), the nodes the thermistors do
    not see take the difference: the bottom ones (below the lower thermistor, where the cold
    water of the last draws settles; not below ``floor_c``, the inlet) when the tank holds less,
    the top ones (above the upper thermistor) when it holds more."""
    out = []
    for i in range(n):
        f = min(1.0, max(0.0, (i - lower_node) / (upper_node - lower_node)))
        out.append(lower_c + f * (upper_c - lower_c))
    if mean_c is not None and math.isfinite(mean_c):
        gap = mean_c * n - sum(out)  # K x nodes
        below, above = list(range(lower_node)), list(range(upper_node + 1, n))
        if gap < 0 and below:
            floor = lower_c - 40.0 if floor_c is None else min(floor_c, lower_c)
            drop = min(-gap / len(below), lower_c - floor)
            for i in below:
                out[i] -= drop
        elif gap > 0 and above:
            for i in above:
                out[i] += min(gap / len(above), 20.0)
    return sorted(out)


def full_tank_start(s: pl.DataFrame, a: float) -> float | None:
    """Where the replay starts from a known tank: the last sample in the SPIN_UP_S before the
    period (``a``) where a heating cycle has just ended with the tank full (a heat source on at the
    sample before, none now, the energy to setpoint 0, no draw): the two thermistors then describe
    the whole tank. None without one: the period then starts from ``initial_profile``. (A full
    tank inside the period is not used: the scenarios would start from the heater's own tank
    there, mid-period, and the counted period would shrink.)"""
    full = s.with_columns(pl.col("heating").shift(1).alias("was_heating")).filter(
        pl.col("was_heating") & ~pl.col("heating") & ~pl.col("drawing")
        & (pl.col("energy_to_setpoint_wh").fill_null(1.0) <= 0.0)
        & pl.col("tank_upper_c").is_not_null() & pl.col("tank_lower_c").is_not_null())
    before = full.filter(pl.col("t") < a)
    return float(before["t"][-1]) if before.height else None


def draw_outlet_c(mart_c: float, upper_mean_c: float | None, element: bool) -> float:
    """The outlet a seen draw is valued at: the draws mart's estimate (the hottest upper reading of
    the last 3 h less 0.5 K/h), or, when an element ran during the draw and the upper thermistor
    read more on average while it ran, that mean: the element holds the top of the tank where the
    water leaves, so it stays near what the upper thermistor reads, while the 3-h estimate lags
    the reheating (1-2 K low on long showers with the element on)."""
    if element and upper_mean_c is not None and math.isfinite(upper_mean_c) and upper_mean_c > mart_c:
        return float(upper_mean_c)
    return mart_c


def _reported_mean(row: dict[str, Any], capacity_wh_per_k: float) -> float | None:
    """The tank's mean as the device reports it: setpoint - energy to setpoint / capacity (the
    field is clipped at 0, so a satisfied tank says only "at or above the setpoint": None)."""
    e, sp = row.get("energy_to_setpoint_wh"), row.get("setpoint_c")
    if e is None or sp is None or not e > 0 or capacity_wh_per_k <= 0:
        return None
    return float(sp) - float(e) / capacity_wh_per_k


def read_inputs(con: Any, params: TwinParams, first: date, last: date, tz: str,
                delivery_c: float, poll_s: float = 30.0, unseen: bool = True,
                spin_up: bool = True) -> TwinInputs:
    """``unseen``: also replay the draws the draws mart cannot see, found from the stored energy's
    unexplained drops (``twin/unseen.py``). ``spin_up``: start the replay at the last full tank in
    the 48 h before the period when the data has one (``full_tank_start``), with the data's own
    draws, room and settings from there; only the period is counted."""
    device = params.device
    a, b = local_bounds(first, last, tz)
    lo, hi = datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC)
    s = con.sql("""
        select epoch(received_at) as t, tank_upper_c, tank_lower_c, ambient_c,
            coalesce(compressor_on, false) as comp, setpoint_c, dhw_mode, energy_to_setpoint_wh,
            coalesce(compressor_on or upper_element_on or lower_element_on, false) as heating,
            coalesce(drawing, false) as drawing
        from stg_status where device = $d and received_at >= $a and received_at < $b
        order by received_at
    """, params={"d": device, "a": lo - timedelta(seconds=SPIN_UP_S), "b": hi}).pl()
    if s.filter(pl.col("t") >= a).height < 10:
        n = s.filter(pl.col("t") >= a).height
        raise ConfigurationError(f"device {device} has {n} status samples from {first} to {last}: "
                                 "too few to replay; choose a period with data (--from/--to)", device=device)
    notes: list[str] = []
    t0 = float(s.filter(pl.col("t") >= a)["t"][0])
    spin = full_tank_start(s, a) if spin_up else None
    spin_from = t0 if spin is None else spin
    s = s.filter(pl.col("t") >= spin_from)
    if spin is not None:
        notes.append(f"spin-up: the replay starts {(t0 - spin) / 3600.0:.1f} h before the period, at the last "
                     "full tank (end of a recovery, nothing to setpoint); only the period is counted")
    t = s["t"].to_numpy().astype(float)
    t1 = min(b, float(t[-1]) + poll_s)
    spin_dt = datetime.fromtimestamp(a if spin is None else spin, UTC)  # draws and unseen draws from here
    rt, rc, cooling = room_series(t, s["ambient_c"].to_numpy().astype(float), s["comp"].to_numpy())
    first_ok = s.filter(pl.col("tank_upper_c").is_not_null() & pl.col("tank_lower_c").is_not_null()).row(0, named=True)
    settings: list[tuple[float, int, int]] = []
    for tt, sp, mode in s.select("t", "setpoint_c", "dhw_mode").iter_rows():
        if sp is None or mode is None or mode not in (1, 2, 3, 4, 5):
            continue
        key = (round(sp * 2), int(mode))
        if not settings or settings[-1][1:] != key:
            settings.append((float(tt) if settings else spin_from, *key))
    if not settings:
        raise ConfigurationError(f"device {device} reports no setpoint/mode from {first} to {last}",
                                 device=device)
    draws_df = con.sql("""
        with seen as (
            select draw_start, draw_end, energy_wh, outlet_c
            from draws where device = $d and draw_start >= $s and draw_start < $b
        ),
        during as (  -- the upper thermistor while the draw ran, and whether an element ran then
            select s.draw_start, avg(i.tank_upper_c) as upper_mean_c, bool_or(i.element_on) as element
            from seen as s
            join int_intervals as i
              on i.device = $d and i.interval_start >= s.draw_start - to_seconds($p)
             and i.interval_start <= s.draw_end
            group by s.draw_start
        )
        select epoch(s.draw_start) as s, epoch(s.draw_end) as e, s.energy_wh, s.outlet_c,
            u.upper_mean_c, coalesce(u.element, false) as element
        from seen as s left join during as u using (draw_start)
        order by s.draw_start
    """, params={"d": device, "s": spin_dt, "b": hi, "p": poll_s}).pl()
    draws: list[tuple[float, float, float, str]] = []
    seen: list[tuple[float, float, float, float]] = []
    energy = 0.0
    for ds, de, wh, outlet, upper_mean, element in draws_df.iter_rows():
        if wh is None or not math.isfinite(wh) or wh < MIN_DRAW_WH or outlet is None:
            continue
        outlet = draw_outlet_c(float(outlet), upper_mean, bool(element))
        month = datetime.fromtimestamp(ds, UTC).month
        rise = max(5.0, float(outlet) - params.inlet_at_month(month))
        vol = wh / (WH_PER_L_K * rise)
        dur = max(poll_s, float(de) - float(ds))
        start = float(ds) - poll_s / 2.0  # it began between the sample before and the first seen
        draws.append((max(spin_from, start), dur, vol / dur * 60.0, "inferred"))
        seen.append((max(spin_from, start), dur, float(wh), float(outlet)))
        if ds >= t0:
            energy += wh
    hidden = find_unseen(con, params, spin_dt, hi) if unseen else Unseen([], 0.0, 0.0)
    draws = sorted(draws + [d for d in hidden.draws if spin_from <= d[0] < t1])
    vols = [(d[1] * d[2] / 60.0, d[0] >= t0) for d in hidden.draws]  # the counted share of their energy
    share = sum(v for v, c in vols if c) / sum(v for v, _ in vols) if vols and spin is not None else 1.0
    slots = con.sql("""
        select epoch(slot_start) as t, compressor_wh, element_wh, standby_wh, total_wh
        from int_energy_slots where device = $d and slot_start >= $a and slot_start < $b
        order by slot_start
    """, params={"d": device, "a": lo, "b": hi}).pl()
    n_cycles = one(con, "select count(*) from heating_cycles where device = $d and cycle_start >= $a "
                   "and cycle_start < $b", {"d": device, "a": lo, "b": hi})
    # the draws mart's outlet estimate (the top of the tank as the upper thermistor last saw it)
    runout = one(con, """
        select coalesce(sum(duration_s), 0) / 60.0 from draws
        where device = $d and draw_start >= $a and draw_start < $b and outlet_c < $c
    """, {"d": device, "a": lo, "b": hi, "c": delivery_c})
    lower = s.filter(pl.col("tank_lower_c").is_not_null()).select("t", "tank_lower_c")
    return TwinInputs(
        device=device, tz=tz, t0=t0, t1=t1, spin_from=spin_from, notes=notes, first_day=first, last_day=last, draws=draws,
        draw_energy_wh=energy, room_t=rt, room_c=rc, cooling_k=cooling,
        initial_c=initial_profile(float(first_ok["tank_upper_c"]), float(first_ok["tank_lower_c"]),
                                  mean_c=_reported_mean(first_ok, params.capacity_wh_per_k),
                                  floor_c=params.inlet_at_month(datetime.fromtimestamp(t0, UTC).month)),
        settings=settings, slots=slots, measured_cycles=int(n_cycles[0] if n_cycles else 0),
        measured_runout_min=float(runout[0] if runout and runout[0] is not None else 0.0),
        samples=s.height, seen=seen, lower_t=lower.get_column("t").to_numpy().astype(float),
        lower_c=lower.get_column("tank_lower_c").to_numpy().astype(float), unseen_wh=hidden.energy_wh * share, unseen_heating_wh=hidden.heating_wh * share)
