"""Drive the simulator's plant and controller (``sim.control.Heater``) with the twin's inputs:
the fitted tank (capacity, UA, element power, COP scale), the inferred draws, the measured room,
and either the settings the heater had or a scenario's. Returns the run's own ledger (60-s steps,
cycles, draws) as frames, the same shape as the simulator's ground truth."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from ..physics import WH_PER_L_K
from ..sim.control import Heater
from ..sim.draws import DrawStream
from ..sim.ledger import TruthLog
from ..sim.plant import TankSpec
from ..sim.schedule import LoadShift
from ..sim.weather import Weather
from .inputs import TwinInputs
from .params import TwinParams


class MeasuredRoom(Weather):
    """The room as measured (linear between readings) and the heat pump's fitted pull-down."""

    def __init__(self, t: np.ndarray, room_c: np.ndarray, cooling_k: float) -> None:
        super().__init__(0, "basement")
        self._t, self._c, self._k = [float(x) for x in t], [float(x) for x in room_c], cooling_k

    def room_c(self, t: float) -> float:  # np.interp for one value, without its per-call cost
        ts, cs = self._t, self._c
        i = bisect_right(ts, t)
        if i == 0:
            return cs[0]
        if i == len(ts):
            return cs[-1]
        t0, t1 = ts[i - 1], ts[i]
        return cs[i - 1] + (cs[i] - cs[i - 1]) * (t - t0) / (t1 - t0) if t1 > t0 else cs[i]

    def room_cooling_k(self) -> float:
        return self._k


class ListDraws(DrawStream):
    """A fixed list of (start, duration s, L/min, kind) draws."""

    def __init__(self, draws: list[tuple[float, float, float, str]]) -> None:
        self._list = sorted(draws)
        super().__init__()

    def _days(self) -> Iterator[list[tuple[float, float, float, str]]]:
        yield list(self._list)


@dataclass(frozen=True)
class Settings:
    """A scenario's settings; None = as the heater had them."""

    setpoint_half_c: int | None = None
    mode: int | None = None
    shift: LoadShift | None = None


@dataclass
class Run:
    steps: pl.DataFrame  # t_start/t_end as epoch s, truth step columns
    draws: pl.DataFrame  # draw_id, start, end (epoch s)
    cycles: int


def replay(params: TwinParams, inputs: TwinInputs, settings: Settings | None = None,
           draws: list[tuple[float, float, float, str]] | None = None) -> Run:
    """Run the twin from ``inputs.spin_from`` (a known full tank before the period, else its
    start) to ``inputs.t1``; the ledger returned starts at ``inputs.t0`` (the spin-up is not
    counted). ``draws`` replaces the inferred draws (the accuracy study replays the true ones)."""
    s = settings or Settings()
    spec = TankSpec(water_l=params.capacity_wh_per_k / WH_PER_L_K, ua_w_per_k=params.ua_w_per_k,
                    element_w=params.element_w)
    first = inputs.settings[0]
    months: dict[int, float] = {}

    def inlet(t: float) -> float:
        if not params.inlet_monthly:
            return params.inlet_c
        m = datetime.fromtimestamp(t, UTC).month
        v = months.get(m)
        if v is None:
            v = months[m] = params.inlet_at_month(m)
        return v

    initial = list(inputs.initial_c)
    if s.setpoint_half_c is not None:  # as if the tank had been kept at the new setpoint all along
        delta = (s.setpoint_half_c - first[1]) / 2.0
        initial = [x + delta for x in initial]
    truth = TruthLog(params.device)
    start = inputs.spin_from if inputs.spin_from is not None else inputs.t0
    h = Heater(spec=spec, seed=0, start=start,
               weather=MeasuredRoom(inputs.room_t, inputs.room_c, inputs.cooling_k),
               draws=ListDraws(inputs.draws if draws is None else draws),
               setpoint_half_c=s.setpoint_half_c if s.setpoint_half_c is not None else first[1],
               mode=s.mode if s.mode is not None else first[2],
               initial_c=initial, inlet=inlet, ems_tz=inputs.tz, truth=truth,
               cop_scale=params.cop_factor, schedule=s.shift)
    h.element_w = params.element_w  # the fitted power, not the simulator's per-device spread
    for t, sp_half, mode in inputs.settings[1:]:
        if t >= inputs.t1:
            break
        h.advance_to(t)
        if s.setpoint_half_c is None and sp_half != h.setpoint_half_c:
            h.set_setpoint(sp_half)
        if s.mode is None and mode != h.mode:
            h.set_mode(mode)
    h.advance_to(inputs.t1)
    h.finish()
    frames = truth.frames()
    steps = epoch_frame(frames["steps"], ("t_start", "t_end"))
    cycles = epoch_frame(frames["cycles"], ("start", "end"))
    if start < inputs.t0:
        steps = steps.filter(pl.col("t_start") >= inputs.t0)
        cycles = cycles.filter(pl.col("start") >= inputs.t0)
    return Run(steps=steps, draws=epoch_frame(frames["draws"], ("start", "end")).select("draw_id", "start", "end"),
               cycles=cycles.height)


def epoch_frame(df: pl.DataFrame, cols: tuple[str, ...]) -> pl.DataFrame:
    """Datetime columns -> float epoch seconds."""
    return df.with_columns([(pl.col(c).dt.epoch("us").cast(pl.Float64) / 1e6).alias(c) for c in cols])


def true_draws(truth_draws: pl.DataFrame) -> list[tuple[float, float, float, str]]:
    """The simulator's true draws (truth/draws rows) as replay draws."""
    out: list[tuple[float, float, float, str]] = []
    for r in epoch_frame(truth_draws, ("start", "end")).iter_rows(named=True):
        dur = r["end"] - r["start"]
        if dur > 0 and r["volume_l"] > 0:
            out.append((r["start"], dur, r["volume_l"] / dur * 60.0, str(r["kind"])))
    return out
