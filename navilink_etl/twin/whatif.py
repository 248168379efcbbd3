"""``whatif``: the backcast (the twin under the settings the heater had, against what it
measured) and each scenario (changed setpoint, DHW mode or load-shift window), with a band from
the backcast error. ``WhatIfResult.to_dict`` is the JSON answer of ``navilink-etl whatif``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from ..config import NaviLinkConfig
from ..errors import ConfigurationError
from ..identity import normalize_mac
from ..physics import f_to_c
from ..protocol import DhwMode, f_from_half_c, half_c_from_f, mode_name
from ..sim.schedule import MAX_HALF_C, LoadShift, mode_number, setpoint_half_c
from .db import one, rows
from .inlet import InletFit, calibrate_inlet, shifted
from .inputs import TwinInputs, default_period, local_bounds, read_inputs
from .metrics import (
    DEFAULT_DELIVERY_F,
    DEFAULT_PEAK,
    FIELDS,
    Window,
    backcast_errors,
    run_metrics,
    slot_metrics,
)
from .params import TwinParams, configured_inlet_c, load_params, lowest_draw_readings
from .replay import Run, Settings, replay
from .scope import period_scope
from .tariff import is_tou, price_function

M = dict[str, float | None]
MIN_REL_BAND = 0.02
ELEMENT_FLOOR_KWH_PER_WEEK = 0.3
RUNOUT_REL_BAND = 0.2
RUNOUT_FLOOR_MIN_PER_WEEK = 10.0
CALIBRATE_MIN_KWH = 0.5
COP_LIMITS = (0.5, 2.0)
UP_K = 3.0  # the inlet calibration may raise the fitted inlet this much, up to the lowest draw reading


@dataclass(frozen=True)
class Scenario:
    """Changed settings (None = as the heater had them)."""

    name: str
    setpoint_f: float | None = None
    mode: str | None = None
    shift: str | None = None

    def settings(self) -> dict[str, Any]:
        return {k: v for k, v in (("setpoint_f", self.setpoint_f), ("mode", self.mode),
                                  ("shift", self.shift)) if v is not None}


@dataclass
class ScenarioResult:
    name: str
    settings: dict[str, Any]
    predicted: M
    band: dict[str, list[float | None]]
    cycles: int


@dataclass
class WhatIfResult:
    device: str
    first_day: date
    last_day: date
    timezone: str
    tariff: str
    peak_window: str
    delivery_f: float
    params: TwinParams
    backcast_measured: M
    backcast_predicted: M
    errors: dict[str, float]  # the backcast's relative error per figure
    scenarios: list[ScenarioResult] = field(default_factory=list)
    inputs: TwinInputs | None = field(default=None, repr=False)
    fitted_params: TwinParams | None = None  # before the COP scale was calibrated on the backcast
    errors_uncalibrated: dict[str, float] = field(default_factory=dict)
    inlet_fit: InletFit | None = None  # the inlet calibrated on the backcast (no configured inlet)
    inlet_fitted_c: float | None = None  # ... and the fitted one it started from

    @property
    def days(self) -> float:
        return (self.last_day - self.first_day).days + 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "period": {"from": self.first_day.isoformat(), "to": self.last_day.isoformat(),
                       "timezone": self.timezone},
            "backcast": {"measured": self.backcast_measured, "predicted": self.backcast_predicted},
            "scenarios": [{"name": s.name, "settings": s.settings, "predicted": s.predicted,
                           "band": s.band} for s in self.scenarios],
        }


def _device(con: Any, device: str | None) -> str:
    known = [r[0] for r in rows(con, "select device from int_device_models order by device")]
    if device is None:
        if len(known) == 1:
            return str(known[0])
        if not known:
            raise ConfigurationError("the warehouse has no device with data: collect or simulate first, "
                                     "then `navilink-etl refresh`")
        raise ConfigurationError(f"{len(known)} devices in the warehouse: pick one with --device "
                                 f"({', '.join(known[:5])}{' ...' if len(known) > 5 else ''})")
    mac = normalize_mac(device)
    if mac is None:
        raise ConfigurationError(f"--device {device!r:.40} is not a MAC (12 hex digits)", setting="device")
    if mac not in known:
        raise ConfigurationError(f"unknown device {mac}: the warehouse has "
                                 f"{', '.join(known[:5]) or 'no devices'}", setting="device")
    return mac


def _min_half_c(con: Any, device: str) -> int:
    row = one(con, "select max(min_setpoint_c) from stg_status where device = ?", [device])
    return round(row[0] * 2) if row and row[0] else 70


def _band(p: M, err: dict[str, float], weeks: float) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    for k in FIELDS:
        v = p.get(k)
        if v is None:
            out[k] = [None, None]
            continue
        if k == "runout_min":
            half = max(RUNOUT_REL_BAND * v, RUNOUT_FLOOR_MIN_PER_WEEK * weeks)
        else:
            e = err.get(k if k != "cost" else "total_kwh", err.get("total_kwh", MIN_REL_BAND))
            half = max(e, MIN_REL_BAND) * abs(v)
            if k == "element_kwh":
                half = max(half, ELEMENT_FLOOR_KWH_PER_WEEK * weeks)
        out[k] = [round(max(0.0, v - half), 4), round(v + half, 4)]
    return out


def _rounded(m: M) -> M:
    return {k: (None if v is None else round(v, 4)) for k, v in m.items()}


def standard_scenarios(actual_half_c: int, tou: bool, shift: str = DEFAULT_PEAK,
                       min_half_c: int = 70) -> list[Scenario]:
    """The report's three: setpoint 10 degF lower (not below the device's minimum), heat pump
    only, a peak shift (TOU tariff only)."""
    sp = max(round(f_from_half_c(actual_half_c) - 10.0), math.ceil(f_from_half_c(min_half_c)))
    out = [Scenario("heat pump only", mode="heat_pump")]
    if half_c_from_f(sp) < actual_half_c:
        out.insert(0, Scenario(f"setpoint {sp} degF", setpoint_f=sp))
    if tou:
        out.append(Scenario(f"shift {shift}", shift=shift))
    return out


def whatif(config: NaviLinkConfig, device: str | None = None, start: date | None = None,
           end: date | None = None, setpoint_f: float | None = None, mode: str | None = None,
           shift: str | None = None, tariff: str | None = None, *,
           scenarios: list[Scenario] | None = None, delivery_f: float = DEFAULT_DELIVERY_F,
           peak: str | None = None, con: Any = None,
           progress: Callable[[str], None] | None = None, unseen_draws: bool = True,
           spin_up: bool = True, inlet_calibration: bool = True) -> WhatIfResult:
    """Backcast the period, then predict each scenario: the one the arguments describe, else
    ``scenarios``, else the standard ones. ``start``/``end``: local days (default: the last 7
    days with data). ``con``: an open warehouse connection (default: open and close one).
    ``unseen_draws``: replay the draws the draws mart cannot see where the stored energy shows
    them (``twin/unseen.py``; off: only the mart's draws, the accuracy study's reference).
    ``spin_up``: start the replay at the last full tank in the 48 h before the period, when the
    data has one (``twin/inputs.py`` ``full_tank_start``; off: always from the first sample).
    ``inlet_calibration``: without a configured inlet, move the fitted one to where the backcast's
    lower thermistor follows the measured one around the draws (``twin/inlet.py``; never with a
    configured inlet)."""
    from .. import warehouse

    say = progress or (lambda _msg: None)
    own = con is None
    if own:
        con = warehouse.connect(config)
    try:
        mac = _device(con, device)
        tz = config.timezone
        if start is None or end is None:
            d0, d1 = default_period(con, mac, tz)
            start, end = start or d0, end or d1
        if end < start:
            raise ConfigurationError(f"--to {end} is before --from {start}", setting="to")
        a, b = local_bounds(start, end, tz)
        with period_scope(con, mac, datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC),
                          warehouse.data_dir_of(config)):
            min_half = _min_half_c(con, mac)
            if setpoint_f is not None:
                setpoint_half_c(setpoint_f, min_half)  # a clear error before any work
            if mode is not None:
                mode_number(mode)
            wanted = shift or peak or DEFAULT_PEAK
            win = LoadShift.parse(wanted, tz)
            window = Window(win.start_min, win.end_min, tz)
            if shift is not None:
                LoadShift.parse(shift, tz)
            price, tariff_label = price_function(config, mac, tariff)
            configured = configured_inlet_c(config)
            params = load_params(con, mac, inlet_c=configured)
            delivery_c = f_to_c(delivery_f)
            say(f"reading {mac} {start}..{end}")
            inputs = read_inputs(con, params, start, end, tz, delivery_c, float(config.polling_interval),
                                 unseen=unseen_draws, spin_up=spin_up)
            inlet_fit, inlet_fitted = None, None
            if configured is None and inlet_calibration:
                say("inlet")
                month = datetime.fromtimestamp(inputs.t0, UTC).month
                cap = lowest_draw_readings(con, mac).get(month)
                up = min(UP_K, cap - params.inlet_at_month(month)) if cap is not None else 0.0
                inlet_fit = calibrate_inlet(params, inputs, up)
                if inlet_fit is not None and inlet_fit.offset_k != 0.0:
                    inlet_fitted = params.inlet_at_month(month)
                    params = shifted(params, inlet_fit.offset_k)
                    params = replace(params, notes=(
                        *params.notes, f"inlet calibrated on the backcast: {params.inlet_at_month(month):.1f} "
                        f"degC (fitted {inlet_fitted:.1f} degC)"))
                    inputs = read_inputs(con, params, start, end, tz, delivery_c,
                                         float(config.polling_interval), unseen=unseen_draws, spin_up=spin_up)
    finally:
        if own:
            con.close()
    weeks = max(1.0, (end - start).days + 1.0) / 7.0
    say("backcast")
    measured = slot_metrics(inputs.slots, inputs.measured_runout_min, price, window)
    fitted = params
    base = replay(params, inputs)
    predicted = run_metrics(base.steps, base.draws, price, window, delivery_c)
    uncalibrated = backcast_errors(measured, predicted)
    params, base, predicted = calibrate(params, inputs, measured, base, predicted,
                                        lambda r: run_metrics(r.steps, r.draws, price, window, delivery_c))
    err = backcast_errors(measured, predicted)
    measured_out = _rounded(measured) | {"cycles": inputs.measured_cycles}
    predicted_out = _rounded(predicted) | {"cycles": base.cycles}
    result = WhatIfResult(device=mac, first_day=start, last_day=end, timezone=tz, tariff=tariff_label,
                          peak_window=win.label, delivery_f=delivery_f, params=params,
                          backcast_measured=measured_out, backcast_predicted=predicted_out, errors=err,
                          inputs=inputs, fitted_params=fitted, errors_uncalibrated=uncalibrated,
                          inlet_fit=inlet_fit, inlet_fitted_c=inlet_fitted)
    if setpoint_f is not None or mode is not None or shift is not None:
        todo = [Scenario(_name(setpoint_f, mode, shift), setpoint_f, mode, shift)]
    else:
        todo = scenarios if scenarios is not None else standard_scenarios(
            inputs.settings[-1][1], is_tou(tariff_label), win.label, min_half)
    for sc in todo:
        say(f"scenario: {sc.name}")
        run = run_scenario(params, inputs, sc, min_half)
        p = run_metrics(run.steps, run.draws, price, window, delivery_c)
        result.scenarios.append(ScenarioResult(sc.name, sc.settings(), _rounded(p), _band(p, err, weeks),
                                               run.cycles))
    return result


def calibrate(params: TwinParams, inputs: TwinInputs, measured: M, run: Run, predicted: M,
              metrics: Callable[[Run], M], tries: int = 3) -> tuple[TwinParams, Run, M]:
    """Scale the COP so the backcast's heat-pump kWh matches the measured (compressor energy goes
    as 1/COP for the same heat): the one parameter the energy alone pins down. The same heat: what
    the heater's elements heated and the twin's heat pump heated instead (or the reverse: an
    element assist the twin does or does not trigger) is counted as heat-pump kWh at the run's
    COP, so a missed assist does not move the COP. Skipped when the heat pump ran too little to
    tell (< CALIBRATE_MIN_KWH)."""
    m_hp = measured.get("heat_pump_kwh") or 0.0
    m_el = measured.get("element_kwh") or 0.0
    for _ in range(tries):
        p_hp = predicted.get("heat_pump_kwh") or 0.0
        e_comp = float(run.steps["elec_compressor_wh"].sum())
        cop = float(run.steps["heat_compressor_wh"].sum()) / e_comp if e_comp > 0 else 0.0
        shifted = (m_el - (predicted.get("element_kwh") or 0.0)) / cop if cop > 0 else 0.0
        target = m_hp + shifted
        if m_hp < CALIBRATE_MIN_KWH or p_hp <= 0 or target <= 0 or abs(p_hp / target - 1.0) < 0.003:
            break
        scale = min(COP_LIMITS[1], max(COP_LIMITS[0], params.cop_factor * p_hp / target))
        if scale == params.cop_factor:
            break
        params = replace(params, cop_factor=scale)
        run = replay(params, inputs)
        predicted = metrics(run)
    return params, run, predicted


def run_scenario(params: TwinParams, inputs: TwinInputs, sc: Scenario, min_half_c: int = 70,
                 draws: list[tuple[float, float, float, str]] | None = None) -> Run:
    settings = Settings(
        setpoint_half_c=setpoint_half_c(sc.setpoint_f, min_half_c, MAX_HALF_C) if sc.setpoint_f is not None else None,
        mode=mode_number(sc.mode) if sc.mode is not None else None,
        shift=LoadShift.parse(sc.shift, inputs.tz) if sc.shift is not None else None)
    return replay(params, inputs, settings, draws=draws)


def _name(setpoint_f: float | None, mode: str | None, shift: str | None) -> str:
    parts = []
    if setpoint_f is not None:
        parts.append(f"setpoint {setpoint_f:g} degF")
    if mode is not None:
        parts.append(str(mode_name(DhwMode, mode_number(mode))).replace("_", " "))
    if shift is not None:
        parts.append(f"shift {shift}")
    return ", ".join(parts)
