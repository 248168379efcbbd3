"""The simulated heater's controller and clock: DHW modes, thresholds, the heat pump's start
sequence, timed settings (electric auto-revert, vacation, anti-Legionella), freeze protection,
and the energy ledgers (EMS day accumulators, ground truth) fed from the plant.

``Heater.advance_to`` steps the plant on a fixed grid (``step_s``), splitting steps at draw
starts/ends and timed transitions; control decisions are taken at the start of each step.
Times are UTC epoch seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from ..physics import F_AT_0_C, F_PER_K
from ..protocol import DhwMode, Event
from .draws import Draw, DrawStream, NoDraws
from .ledger import TruthLog
from .plant import HP_LOCKOUT_F, Tank, TankSpec, c_to_f, hp_performance_c
from .schedule import LoadShift
from .weather import Weather, inlet_c

TRUTH_STEP_S = 60.0
DELIVERY_105F_C = (105.0 - 32.0) / 1.8  # truth of run-outs: water leaving below 105 degF
_INF = math.inf

# heat-pump phases -> currentStatenum (docs/protocol.md 5.5)
HP_OFF, HP_HOLD, HP_PRERUN, HP_RUN = 0, 1, 2, 3
# DhwMode as plain ints: the controller runs every step and enum look-ups cost
_HEAT_PUMP, _ELECTRIC, _SAVER, _BOOST, _VACATION, _OFF = (int(m) for m in DhwMode)


class Heater:
    """One NWP500: tank + controller + boundary conditions + ledgers."""

    def __init__(
        self,
        *,
        spec: TankSpec,
        seed: int,
        start: float,
        weather: Weather,
        draws: DrawStream | None = None,
        setpoint_half_c: int = 121,
        mode: int = DhwMode.ENERGY_SAVER,
        reference_c: float = 35.0,
        step_s: float = 30.0,
        compressor_start_delay_s: float = 120.0,
        min_off_s: float = 300.0,
        power_on_hold_s: float = 120.0,
        hp_on_diff_k: float = 5.0,
        electric_on_diff_k: float = 4.0,
        saver_assist_diff_k: float = 10.0,
        boost_assist_diff_k: float = 4.0,
        upper_on_diff_k: float = 8.0,
        initial_c: float | list[float] | None = None,
        inlet: Callable[[float], float] | None = None,
        ems_tz: str = "UTC",
        anti_legionella_days: int | None = None,
        fan_hours: float = 185.0,
        cop_scale: float = 1.0,
        truth: TruthLog | None = None,
        plan: Sequence[tuple[float, str, int]] = (),
        schedule: LoadShift | None = None,
    ) -> None:
        """``plan``: timed setting changes (epoch s, "setpoint_half_c" | "mode" | "vacation_days",
        value), applied at the first step boundary at or after their time, as a control request
        would be."""
        if 60.0 % step_s:
            raise ValueError("step_s must divide 60 s")
        self.spec = spec
        self.seed = seed
        self.t = float(start)
        self.weather = weather
        self.draws = draws if draws is not None else NoDraws()
        self.reference_c = reference_c
        self.step_s = step_s
        self.start_delay_s = compressor_start_delay_s
        self.min_off_s = min_off_s
        self.power_on_hold_s = power_on_hold_s
        self.hp_on_diff_k = hp_on_diff_k
        self.electric_on_diff_k = electric_on_diff_k
        self.saver_assist_diff_k = saver_assist_diff_k
        self.boost_assist_diff_k = boost_assist_diff_k
        self.upper_on_diff_k = upper_on_diff_k
        self.inlet = inlet or inlet_c
        self.tz = ZoneInfo(ems_tz)
        self.truth = truth
        self.cop_scale = float(cop_scale)  # multiplies the map's COP (faults change it mid-run)
        # device-specific electrical spread: element ~ +/-4 % of rating (line voltage), fan W
        h = (seed * 2654435761 + 97) & 0xFFFFFFFF
        self.element_w = spec.element_w * (0.97 + 0.07 * ((h % 1000) / 1000.0))
        self.controls_w = 1.0
        self.schedule = schedule  # a daily load shift (sim/schedule.py), None = heat any time
        # settings
        self.setpoint_half_c = int(setpoint_half_c)
        self.mode = int(mode)  # stored user mode 1-5
        self.power_on = True
        self.prev_mode: int = DhwMode.ENERGY_SAVER  # restored after electric revert / vacation
        self.electric_revert_at = _INF
        self.vacation_days = 0
        self.vacation_end = -_INF
        self.freeze_half_c = 12
        self.al_enabled = anti_legionella_days is not None
        self.al_period_days = anti_legionella_days or 7
        self.al_next = self._al_schedule(self.t) if self.al_enabled else _INF
        self.al_active = False
        # plant
        sp = self.setpoint_c
        if initial_c is None:
            n = spec.n_nodes
            initial_c = [sp - 1.5 + 1.5 * i / (n - 1) for i in range(n)]
        self.tank = Tank(spec, initial_c)
        self.cooling_k = 0.0
        self._hp_at = -_INF
        self._hp = (0.0, 1.0)
        self._room_minute = -1
        self._room_c = 0.0
        self.ambient_c = weather.room_c(self.t)
        # controller state
        self.demand = False
        self.upper_latch = False
        self.freeze_active = False
        self.phase = HP_OFF
        self.phase_until = _INF
        self.comp_started = -_INF
        self.last_comp_stop = -_INF
        self.power_on_hold_until = -_INF
        self.wind_down_until = -_INF
        self.comp_on = self.upper_on = self.lower_on = False
        self.busy = False
        self.fan_hours = fan_hours
        self.pending_trigger: str | None = None  # why the next demand starts, if known
        self.pending_at = -_INF
        self.demand_trigger = "standby_loss"
        self.element_cause: str | None = None  # why the elements are on now (docs: ELEMENT_CAUSES)
        self.plan = sorted(plan)
        self.plan_next = self.plan[0][0] if self.plan else _INF
        self.on_event: Callable[[float, int], None] | None = None
        self._sig = self._signature()
        # draws
        self.draw: Draw | None = None
        self.next_draw = self.draws.next()
        self.last_draw_end = -_INF
        self._draw_acc = [0.0, 0.0, _INF, 0.0]  # L, Wh, lowest outlet degC, L below 105 degF
        # EMS: local day -> [hp Wh, he Wh, hp s, he s]
        self.ems: dict[object, list[float]] = {}
        self._ems_day: object = None
        self._ems_bounds = (_INF, -_INF)
        # truth: minute accumulator and open cycle
        self._minute_end = (math.floor(self.t / TRUTH_STEP_S) + 1) * TRUTH_STEP_S
        self._minute_start = self.t
        self._macc = [0.0] * 11
        self._m_cause: dict[str, float] = {}  # element Wh per cause in the open minute
        self._m_cycle: int | None = None
        self._m_draw: int | None = None
        self.cycle_id = 0
        self.cycle: list[float] | None = None  # accumulators of the open cycle
        self.cycle_meta: tuple[float, str, float, float] | None = None
        self.cycle_draw = False
        self.cycle_last_on = -_INF
        self._begin_step()

    # --- derived state -------------------------------------------------------------------------
    @property
    def setpoint_c(self) -> float:
        return self.setpoint_half_c / 2.0

    @property
    def display_mode(self) -> int:
        return DhwMode.POWER_OFF if not self.power_on else self.mode

    def effective_mode(self) -> int:
        """The mode that drives heating now: 0 = none (off, vacation before its last 9 h)."""
        if not self.power_on:
            return 0
        if self.mode == _VACATION:
            return self.prev_mode if self.t >= self.vacation_end - 9 * 3600 else 0
        return self.mode

    def heat_use(self) -> int:
        if not self.power_on:
            return 0
        m = self.mode
        if m in (_SAVER, _BOOST):
            return 3
        if m == _HEAT_PUMP:
            return 1 if self.busy else 0
        if m == _ELECTRIC:
            return 2 if self.busy else 0
        return 0

    def operation_mode(self) -> int:
        return (0x20 if self.phase != HP_OFF else 0) | (0x40 if self.upper_on or self.lower_on else 0)

    def statenum(self) -> int:
        p = self.phase
        if p == HP_RUN:
            return 40 if self.t - self.comp_started < 60.0 else 50
        if p == HP_PRERUN:
            return 30
        if p == HP_HOLD:
            return 70
        return 60 if self.t < self.wind_down_until else 20

    def fan_prerun_w(self) -> float:
        """Fan/EEV pre-run draw, ramping 2 -> 16 W over the first minute (3-17 W with controls)."""
        return 2.0 + 14.0 * min(1.0, max(0.0, (self.t - (self.phase_until - self.start_delay_s)) / 60.0))

    def power_w(self) -> float:
        """True whole-unit electrical power now."""
        p = self.controls_w
        if self.phase == HP_RUN:
            p += self._hp_perf()[0]
        elif self.phase == HP_PRERUN:
            p += self.fan_prerun_w()
        if self.upper_on or self.lower_on:
            p += self.element_w
        return p

    def _hp_perf(self) -> tuple[float, float]:
        """Compressor input W and COP for the step starting now (computed once per step)."""
        if self._hp_at != self.t:
            self._hp_at = self.t
            tank = self.tank
            nodes = tank.t
            k = tank.spec.condenser_nodes
            # Tank.hp_map_c, inline
            p, cop = hp_performance_c(0.5 * (sum(nodes) / len(nodes) + sum(nodes[:k]) / k),
                                      self.ambient_c)
            self._hp = (p, cop * self.cop_scale)
        return self._hp

    def vacation_remaining_days(self) -> int:
        if self.mode != DhwMode.VACATION:
            return 0
        return max(0, math.ceil((self.vacation_end - self.t) / 86400.0))

    def _signature(self) -> tuple[bool, bool, bool, int, bool, int]:
        op = (0x20 if self.phase != HP_OFF else 0) | (0x40 if self.upper_on or self.lower_on else 0)
        return (self.comp_on, self.upper_on, self.lower_on, op, self.busy, self.heat_use())

    def _al_schedule(self, after: float) -> float:
        day = math.floor(after / 86400.0)
        return (day + self.al_period_days) * 86400.0 + 3600.0

    # --- controls ------------------------------------------------------------------------------
    def set_power(self, on: bool) -> None:
        if on and not self.power_on:
            self.power_on = True
            self.power_on_hold_until = self.t + self.power_on_hold_s
        elif not on and self.power_on:
            self.power_on = False
            self.wind_down_until = self.t + 60.0
        self.sync_signature()

    def set_mode(self, mode: int, days: int = 0) -> None:
        old = self.mode
        if mode == DhwMode.VACATION:
            if old not in (DhwMode.VACATION, DhwMode.ELECTRIC):
                self.prev_mode = old
            self.vacation_days = days
            self.vacation_end = self.t + days * 86400.0
            self.electric_revert_at = _INF
        elif mode == DhwMode.ELECTRIC:
            if old not in (DhwMode.VACATION, DhwMode.ELECTRIC):
                self.prev_mode = old
            self.electric_revert_at = self.t + 72 * 3600.0
        else:
            self.electric_revert_at = _INF
        if mode != DhwMode.VACATION:
            self.vacation_end = -_INF
        self.mode = mode
        if mode != old:
            self.pending_trigger, self.pending_at = "mode_change", self.t
        self.sync_signature()

    def set_setpoint(self, half_c: int) -> None:
        if half_c > self.setpoint_half_c:
            self.pending_trigger, self.pending_at = "setpoint_raise", self.t
        self.setpoint_half_c = half_c
        self.sync_signature()

    def set_anti_legionella(self, period_days: int | None) -> None:
        self.al_enabled = period_days is not None
        if period_days is not None:
            self.al_period_days = period_days
            self.al_next = self._al_schedule(self.t)
        else:
            self.al_next = _INF
            self.al_active = False
        self.sync_signature()

    def sync_signature(self) -> None:
        """A control echo already carries the new settings: no push for them."""
        self._sig = self._signature()

    # --- the controller ------------------------------------------------------------------------
    def _timed_settings(self) -> None:
        t = self.t
        if t >= self.electric_revert_at:
            self.electric_revert_at = _INF
            self.mode = self.prev_mode
        if self.mode == DhwMode.VACATION and t >= self.vacation_end:
            self.mode = self.prev_mode
            self.vacation_end = -_INF
        if self.al_enabled and t >= self.al_next:
            self.al_next = self._al_schedule(t)
            if self.power_on and self.mode != DhwMode.VACATION:
                self.al_active = True
                self.pending_trigger, self.pending_at = "anti_legionella", t

    def _apply_plan(self) -> None:
        while self.plan and self.plan[0][0] <= self.t + 1e-6:
            _, what, value = self.plan.pop(0)
            if what == "setpoint_half_c":
                self.set_setpoint(value)
            elif what == "mode":
                self.set_mode(value)
            elif what == "vacation_days":
                self.set_mode(DhwMode.VACATION, value)
            else:
                raise ValueError(f"plan: unknown setting {what!r} "
                                 "(setpoint_half_c, mode or vacation_days)")
        self.plan_next = self.plan[0][0] if self.plan else _INF

    def _control(self) -> None:
        t = self.t
        if t >= self.plan_next - 1e-6:
            self._apply_plan()
        if t >= self.electric_revert_at or (self.mode == _VACATION and t >= self.vacation_end) \
                or (self.al_enabled and t >= self.al_next):
            self._timed_settings()
        tank = self.tank
        nodes = tank.t
        spec = tank.spec
        up, lo = nodes[spec.upper_sensor_node], nodes[spec.lower_sensor_node]
        sp = self.setpoint_half_c / 2.0
        # effective_mode(), inline
        power_on = self.power_on
        mode = self.mode
        if not power_on:
            eff = 0
        elif mode == _VACATION:
            eff = self.prev_mode if t >= self.vacation_end - 9 * 3600 else 0
        else:
            eff = mode
        if self.schedule is not None:
            sp, eff = self.schedule.adjust(t, sp, eff)
        want_hp = want_up = want_lo = False
        fz = self.freeze_half_c / 2.0
        freeze = self.freeze_active
        if not freeze and min(up, lo) < fz:
            self.freeze_active = freeze = True
            self.pending_trigger, self.pending_at = "freeze_protection", t
        elif freeze and min(up, lo) >= fz + 8.0:
            self.freeze_active = freeze = False
        was_busy = self.busy
        al_active = self.al_active
        demand = self.demand
        if al_active:
            target = max(sp, 60.0)
            want_up = up < target
            want_lo = not want_up and lo < target
            if not (want_up or want_lo):
                self.al_active = al_active = False
            demand = al_active
        elif eff:
            if not demand:
                diff = self.electric_on_diff_k if eff == _ELECTRIC else self.hp_on_diff_k
                if lo < sp - diff or up < sp - self.upper_on_diff_k:
                    demand = True
            elif lo >= sp and up >= sp - 0.5:
                demand = False
                self.upper_latch = False
            if demand:
                # c_to_f(ambient) < HP_LOCKOUT_F, inline: elements only
                if eff == _ELECTRIC or self.ambient_c * F_PER_K + F_AT_0_C < HP_LOCKOUT_F:
                    if up < sp - 2.0:
                        self.upper_latch = True
                    elif up >= sp:
                        self.upper_latch = False
                    want_up = self.upper_latch
                    want_lo = not want_up
                else:
                    want_hp = True
                    if eff != _HEAT_PUMP:
                        assist = self.saver_assist_diff_k if eff == _SAVER else self.boost_assist_diff_k
                        if up < sp - assist:
                            self.upper_latch = True
                        elif up >= sp - (1.0 if eff == _SAVER else 0.0):
                            self.upper_latch = False
                        want_up = self.upper_latch
        else:
            demand = False
            self.upper_latch = False
        self.demand = demand
        freeze_only = False
        if freeze and not (want_up or want_lo or want_hp):
            want_lo = freeze_only = True
        self.busy = busy = demand or al_active or freeze
        if busy and not was_busy:
            trig = self.pending_trigger if t - self.pending_at < 600.0 else None
            if trig is None:
                drawing = self.draw is not None or t - self.last_draw_end < 1800.0
                trig = "draw" if drawing else "standby_loss"
            self.demand_trigger = trig
            self.pending_trigger = None
        if want_up or want_lo:
            self.element_cause = self._element_cause(eff, freeze_only)
        else:
            self.element_cause = None
        # heat-pump start sequence
        phase = self.phase
        if want_hp:
            if phase == HP_OFF:
                hold = max(self.last_comp_stop + self.min_off_s, self.power_on_hold_until)
                if t < hold:
                    phase, self.phase_until = HP_HOLD, hold
                else:
                    phase, self.phase_until = HP_PRERUN, t + self.start_delay_s
            if phase == HP_HOLD and t >= self.phase_until:
                phase, self.phase_until = HP_PRERUN, t + self.start_delay_s
            if phase == HP_PRERUN and t >= self.phase_until:
                phase, self.phase_until = HP_RUN, _INF
                self.comp_started = t
        else:
            if phase == HP_RUN:
                self.last_comp_stop = t
            phase, self.phase_until = HP_OFF, _INF
        self.phase = phase
        self.comp_on = comp_on = phase == HP_RUN
        upper_on, lower_on = want_up, want_lo and not want_up
        self.upper_on, self.lower_on = upper_on, lower_on
        heating = comp_on or upper_on or lower_on
        if heating and self.cycle is None:
            self._open_cycle(t)
        elif self.cycle is not None and not heating and not busy:
            self._close_cycle()
        # _signature(), inline (heat_use() with the state just set)
        if not power_on:
            use = 0
        elif mode in (_SAVER, _BOOST):
            use = 3
        elif mode == _HEAT_PUMP:
            use = 1 if busy else 0
        elif mode == _ELECTRIC:
            use = 2 if busy else 0
        else:
            use = 0
        sig = (comp_on, upper_on, lower_on,
               (0x20 if phase != HP_OFF else 0) | (0x40 if upper_on or lower_on else 0), busy, use)
        if sig != self._sig:
            old = self._sig
            self._sig = sig
            if sig[:3] != old[:3]:
                code = Event.RELAY_CHANGED
            elif sig[3] != old[3]:
                code = Event.OPERATION_MODE_CHANGED
            else:
                code = Event.BUSY_CHANGED
            if self.on_event is not None:
                self.on_event(t, int(code))

    def _element_cause(self, eff: int, freeze_only: bool) -> str:
        """Why the controller has an element on (the truth of ``element_use.cause``)."""
        if self.al_active:
            return "anti_legionella"
        if freeze_only:
            return "freeze_protection"
        if eff == _ELECTRIC:
            return "mode_electric"
        if c_to_f(self.ambient_c) < HP_LOCKOUT_F:
            return "cold_lockout"
        if eff == _BOOST:
            return "mode_high_demand"
        if self.demand_trigger == "setpoint_raise":
            return "setpoint_raise"
        return "demand"

    def _next_event(self) -> float:
        nxt = min(self.phase_until, self.plan_next)
        if self.draw is not None:
            nxt = min(nxt, self.draw.end)
        elif self.next_draw is not None:
            nxt = min(nxt, self.next_draw.start)
        return nxt

    # --- time stepping -------------------------------------------------------------------------
    def advance_to(self, t_end: float) -> None:
        """Step the plant to ``t_end``; decisions due at ``t_end`` are taken (and pushed) on arrival."""
        step = self.step_s
        floor = math.floor
        integrate, begin_step = self._integrate, self._begin_step
        while (t := self.t) < t_end - 1e-6:
            # idle_limit is t itself while anything runs: only ask it when the plant may be idle
            if t_end - t > 20 * step and self.phase == HP_OFF and not self.busy \
                    and self.draw is None and self.idle_limit(t_end) > t + 2 * step:
                self.fast_idle(t_end)  # a long idle stretch in closed form
                continue
            # the next boundary: t_end, the step grid or _next_event(), whichever comes first
            draw = self.draw
            nxt = min(self.phase_until, self.plan_next)
            if draw is not None:
                nxt = min(nxt, draw.end)
            elif self.next_draw is not None:
                nxt = min(nxt, self.next_draw.start)
            nb = min(t_end, (floor(t / step + 1e-9) + 1) * step, nxt)
            if nb <= t:
                nb = min(t_end, t + step)
            integrate(t, nb - t)
            self.t = nb
            if draw is not None and draw.end <= nb + 1e-6:
                self._close_draw()
            if nb >= self._minute_end - 1e-6:
                self._close_minute()
            begin_step()

    def decide(self) -> None:
        """Take the decisions due now (after ``fast_idle(decide=False)``)."""
        self._begin_step()

    def _begin_step(self) -> None:
        """At a step boundary: start a due draw, read the room, take the control decisions."""
        t = self.t
        if self.draw is None and self.next_draw is not None and self.next_draw.start <= t + 1e-6:
            self.draw = self.next_draw
            self.next_draw = self.draws.next()
            self._draw_acc = [0.0, 0.0, _INF, 0.0]
        minute = int(t // 60.0)
        if minute != self._room_minute:  # the room changes slowly: read it once a minute
            self._room_minute = minute
            self._room_c = self.weather.room_c(t)
        self.ambient_c = self._room_c - self.cooling_k
        self._control()

    # --- idle fast path (bulk simulation) ------------------------------------------------------
    def idle_limit(self, t_limit: float) -> float:
        """How far the plant can only lose heat (no draw, timed setting or heating), capped at
        ``t_limit``; ``self.t`` when it is not idle now or not on the step grid."""
        t = self.t
        if (self.phase != HP_OFF or self.busy or self.draw is not None or self.cycle is not None
                or self.upper_on or self.lower_on or t < self.wind_down_until
                or abs(t / self.step_s - round(t / self.step_s)) > 1e-9):
            return t
        lim = min(t_limit, self.electric_revert_at, self.al_next if self.al_enabled else _INF,
                  self.plan_next)
        if self.schedule is not None:
            lim = min(lim, self.schedule.next_change(t))
        if self.next_draw is not None:
            lim = min(lim, self.next_draw.start)
        if self.mode == DhwMode.VACATION:
            resume = self.vacation_end - 9 * 3600.0
            lim = min(lim, resume if t < resume else self.vacation_end)
        return lim

    def fast_idle(self, t_limit: float, max_steps: int = 5760, *, decide: bool = True) -> tuple[np.ndarray, ...]:
        """Advance through whole idle grid steps in closed form (the same recurrence as
        ``Tank.idle_step``), stopping at the first boundary where the controller would act. There
        its decisions are taken as usual, or (``decide=False``) left to a call of ``decide()``.
        Returns (times, upper, lower, mean, condenser, ambient) at the boundaries passed before
        that one (empty if none)."""
        step = self.step_s
        k_max = min(max_steps, math.floor((self.idle_limit(t_limit) - self.t) / step + 1e-9))
        if k_max < 2:
            return tuple(np.empty(0) for _ in range(6))
        t0 = self.t
        tank = self.tank
        spec = tank.spec
        ks = np.arange(k_max + 1, dtype=np.float64)
        times = t0 + ks * step  # boundaries 0..K
        minutes = np.floor(times / 60.0)
        uniq, inv = np.unique(minutes, return_inverse=True)
        room = np.array([self.weather.room_c(m * 60.0) for m in uniq])[inv]
        room[0] = self._room_c
        cooling = self.cooling_k * np.exp(-step / 2700.0) ** ks
        amb = room - cooling  # ambient of the step starting at each boundary
        cn = spec.capacity_wh_per_k / spec.n_nodes
        rho = math.exp(-(spec.ua_w_per_k / spec.n_nodes) * step / 3600.0 / cn)
        a = 1.0 - rho
        rk = rho ** ks
        # S_k = sum_{j<k} rho^(k-1-j) a amb_j, the room's pull on every node alike
        w = np.cumsum(a * amb[:-1] * rho ** -(ks[:-1] + 1.0))
        s_k = np.concatenate(([0.0], rk[1:] * w))
        up = rk * tank.upper_c + s_k
        lo = rk * tank.lower_c + s_k
        # the first boundary (k >= 1) where the controller would start something
        fz = self.freeze_half_c / 2.0
        act = np.minimum(up, lo) < fz
        eff = self.effective_mode()
        sp = self.setpoint_c
        if self.schedule is not None:
            sp, eff = self.schedule.adjust(t0, sp, eff)
        if eff:
            diff = self.electric_on_diff_k if eff == DhwMode.ELECTRIC else self.hp_on_diff_k
            act |= (lo < sp - diff) | (up < sp - self.upper_on_diff_k)
        act[0] = False
        hits = np.flatnonzero(act)
        k_stop = int(hits[0]) if len(hits) else k_max
        mean = rk * tank.mean_c + s_k
        cond = rk * tank.condenser_c + s_k
        # truth: standby energy and loss per step, closed into minute rows
        loss = spec.capacity_wh_per_k * a * (mean[:k_stop] - amb[:k_stop])
        e_sb = self.controls_w * step / 3600.0
        cum_loss = np.concatenate(([0.0], np.cumsum(loss)))
        passed = times[1:k_stop + 1] / TRUTH_STEP_S
        ends = np.flatnonzero(np.abs(passed - np.round(passed)) < 1e-9) + 1
        prev_k = 0
        m = self._macc
        rows = self.truth.steps if self.truth is not None else None
        cap, ref = spec.capacity_wh_per_k, self.reference_c
        sp_c, dmode = self.setpoint_c, self.display_mode
        for k in ends.tolist():
            if rows is not None:
                rows.append((
                    self._minute_start, float(times[k]), m[0], m[1], m[2],
                    m[3] + e_sb * (k - prev_k), m[4], m[5],
                    m[6] + float(cum_loss[k] - cum_loss[prev_k]), m[7], m[8],
                    cap * (float(mean[k]) - ref), float(mean[k]), float(up[k]), float(lo[k]),
                    float(amb[k - 1]), self.inlet(self._minute_start), sp_c, dmode, m[9], m[10],
                    self._m_cycle, self._m_draw, self._minute_cause(),
                ))
            m = [0.0] * 11
            self._m_cause = {}
            self._m_cycle = self._m_draw = None
            self._minute_start = float(times[k])
            prev_k = k
        m[3] += e_sb * (k_stop - prev_k)
        m[6] += float(cum_loss[k_stop] - cum_loss[prev_k])
        self._macc = m
        # commit the state at boundary k_stop, then decide there as the step path would
        # (as Python floats: the same IEEE products and sums as numpy's, and every later step's
        # arithmetic on the nodes runs several times faster than on numpy scalars)
        r, s = float(rk[k_stop]), float(s_k[k_stop])
        tank.t = [r * x + s for x in tank.t]
        self.cooling_k = float(cooling[k_stop])
        self.t = float(times[k_stop])
        self._minute_end = (math.floor(self.t / TRUTH_STEP_S + 1e-9) + 1) * TRUTH_STEP_S
        if decide:
            self._begin_step()
        sl = slice(1, k_stop)
        return times[sl], up[sl], lo[sl], mean[sl], cond[sl], amb[sl]

    def _integrate(self, t: float, dt: float) -> None:
        h = dt / 3600.0
        tank = self.tank
        amb = self.ambient_c
        phase = self.phase
        draw = self.draw
        up_on, lo_on = self.upper_on, self.lower_on
        el_on = up_on or lo_on
        if phase <= HP_HOLD and draw is None and self.cycle is None and not el_on:  # OFF or HOLD
            # idle: standby loss only (uniform decay keeps the stratification: no mixing)
            loss = tank.idle_step(dt, amb)
            self.cooling_k *= math.exp(-dt / 2700.0)
            m = self._macc
            m[3] += self.controls_w * h
            m[6] += loss
            return
        comp_on = self.comp_on
        e_comp = q_hp = 0.0
        if comp_on:
            if self._hp_at == t:
                p, cop = self._hp
            else:  # _hp_perf(), inline
                self._hp_at = t
                nodes = tank.t
                k = tank.spec.condenser_nodes
                p, cop = hp_performance_c(0.5 * (sum(nodes) / len(nodes) + sum(nodes[:k]) / k), amb)
                cop *= self.cop_scale
                self._hp = (p, cop)
            e_comp = p * h
            q_hp = e_comp * cop
        e_fan = self.fan_prerun_w() * h if phase == HP_PRERUN else 0.0
        e_up = self.element_w * h if up_on else 0.0
        e_lo = self.element_w * h if lo_on else 0.0
        e_sb = self.controls_w * h + e_fan
        if draw is not None:
            loss, draw_l, draw_wh = tank.advance(dt, q_hp, e_up, e_lo, draw.flow_lpm, self.inlet(t), amb)
        else:
            loss, draw_l, draw_wh = tank.advance(dt, q_hp, e_up, e_lo, 0.0, 0.0, amb)
        # the running heat pump pulls its room down a little (first order, ~45 min)
        target = self.weather.room_cooling_k() if comp_on else 0.0
        self.cooling_k += (target - self.cooling_k) * (1.0 - math.exp(-dt / 2700.0))
        if phase > HP_HOLD:  # PRERUN or RUN
            self.fan_hours += h
        # EMS day accumulators (device's local day)
        lo_b, hi_b = self._ems_bounds
        if not lo_b <= t < hi_b:
            self._ems_roll(t)
        acc = self.ems[self._ems_day]
        acc[0] += e_comp + e_fan
        e_el = e_up + e_lo
        acc[1] += e_el
        if comp_on:
            acc[2] += dt
        if el_on:
            acc[3] += dt
        # truth
        if draw is not None:
            da = self._draw_acc
            top = tank.t[-1]  # the top node feeds the outlet
            da[0] += draw_l
            da[1] += draw_wh
            da[2] = min(da[2], top)
            if top < DELIVERY_105F_C:
                da[3] += draw_l
            self._m_draw = draw.draw_id
        m = self._macc
        m[0] += e_comp
        m[1] += e_up
        m[2] += e_lo
        m[3] += e_sb
        m[4] += q_hp
        m[5] += e_el
        m[6] += loss
        m[7] += draw_l
        m[8] += draw_wh
        m[9] += dt if comp_on else 0.0
        m[10] += dt if el_on else 0.0
        if e_up or e_lo:
            cause = self.element_cause or "unknown"
            mc = self._m_cause
            mc[cause] = mc.get(cause, 0.0) + e_up + e_lo  # this order: the same sums
        c = self.cycle
        if c is not None:
            c[0] += e_comp
            c[1] += e_el
            c[2] += e_sb
            c[3] += q_hp
            c[4] += e_el
            c[5] += loss
            c[6] += draw_wh
            c[7] += amb * dt
            c[8] += dt
            self._m_cycle = self.cycle_id
            if draw is not None:
                self.cycle_draw = True
            if comp_on or el_on:
                self.cycle_last_on = t + dt

    def _ems_roll(self, t: float) -> None:
        local = datetime.fromtimestamp(t, self.tz)
        day = local.date()
        start = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        end = start + timedelta(days=1)
        self._ems_day = day
        self._ems_bounds = (start.timestamp(), end.timestamp())
        self.ems.setdefault(day, [0.0, 0.0, 0.0, 0.0])

    # --- ground truth --------------------------------------------------------------------------
    def _open_cycle(self, t: float) -> None:
        self.cycle_id += 1
        self.cycle = [0.0] * 9
        self.cycle_meta = (t, self.demand_trigger, self.tank.mean_c,
                           self.tank.stored_wh(self.reference_c))
        self.cycle_draw = self.draw is not None

    def _close_cycle(self) -> None:
        c, meta = self.cycle, self.cycle_meta
        self.cycle = None
        if c is None or meta is None or self.truth is None:
            return
        start, trig, mean0, stored0 = meta
        end = self.cycle_last_on
        dur_h = max(end - start, 1e-9) / 3600.0
        mix = "heat_pump" if c[1] == 0.0 else ("element" if c[0] == 0.0 else "hybrid")
        mean1 = self.tank.mean_c
        self.truth.cycles.append((
            self.cycle_id, start, end, mix, trig, c[0], c[1], c[2], c[3], c[4], c[5],
            self.cycle_draw, c[6], mean0, mean1, stored0, self.tank.stored_wh(self.reference_c),
            c[7] / c[8] if c[8] else self.ambient_c, c[3] / c[0] if c[0] > 0 else None,
            (mean1 - mean0) / dur_h, (c[3] + c[4]) / dur_h,
        ))

    def _minute_cause(self) -> str | None:
        """The cause of most of the open minute's element energy (None without any)."""
        mc = self._m_cause
        return max(mc, key=mc.__getitem__) if mc else None

    def finish(self) -> None:
        """End of a run: write the open cycle and draw to the truth, cut at the current time."""
        if self.cycle is not None:
            if self.comp_on or self.upper_on or self.lower_on:
                self.cycle_last_on = self.t
            self._close_cycle()
        if self.draw is not None:
            d = self.draw
            self.draw = Draw(d.draw_id, d.start, min(d.end, self.t), d.flow_lpm, d.kind)
            self._close_draw()

    def _close_draw(self) -> None:
        d = self.draw
        self.draw = None
        if d is None:
            return
        self.last_draw_end = d.end
        if self.truth is not None:
            vol, wh, low, short_l = self._draw_acc
            inlet = self.inlet(d.start)
            outlet = inlet + wh / (vol * 1.163) if vol > 0 else inlet
            low = low if vol > 0 else self.tank.t[-1]
            self.truth.draws.append((d.draw_id, d.start, d.end, vol, wh, d.kind, outlet, inlet, low,
                                     short_l))

    def _close_minute(self) -> None:
        t0, t1 = self._minute_start, self.t
        if self.truth is not None:
            m = self._macc
            nodes = self.tank.t
            spec = self.spec
            mean = sum(nodes) / len(nodes)
            self.truth.steps.append((
                t0, t1, m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8],
                spec.capacity_wh_per_k * (mean - self.reference_c), mean,
                nodes[spec.upper_sensor_node], nodes[spec.lower_sensor_node],
                self.ambient_c, self.inlet(t0), self.setpoint_half_c / 2.0,
                self.mode if self.power_on else _OFF, m[9], m[10], self._m_cycle, self._m_draw,
                self._minute_cause(),
            ))
        self._macc = [0.0] * 11
        self._m_cause = {}
        self._m_cycle = self.cycle_id if self.cycle is not None else None
        self._m_draw = self.draw.draw_id if self.draw is not None else None
        self._minute_start = t1
        self._minute_end = (math.floor(t1 / TRUTH_STEP_S + 1e-9) + 1) * TRUTH_STEP_S
