"""Changed settings for a simulated heater: a setpoint in degF, a DHW mode by name, and a daily
load-shift window (preheat to the device's maximum before it, no heating during it).

``LoadShift.adjust`` is the controller's one hook (``Heater._control`` / ``fast_idle``): it maps
(setpoint, effective mode) at time ``t`` to what the controller should aim for. ``next_change``
bounds the idle fast path so the schedule's transitions are decided on time. Times are UTC epoch
seconds; the window is in the device's local clock (``tz``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ConfigurationError
from ..protocol import DhwMode, f_from_half_c, half_c_from_f

MAX_HALF_C = 131  # the device's top setpoint (65.5 degC, ~150 degF; its DID's dhwTemperatureMax)
MIN_HALF_C = 70  # the 2025-09 firmware's floor (35 degC, 95 degF)
MODES: dict[str, int] = {
    "heat_pump": DhwMode.HEAT_PUMP, "energy_saver": DhwMode.ENERGY_SAVER,
    "high_demand": DhwMode.HIGH_DEMAND, "electric": DhwMode.ELECTRIC,
}  # fmt: skip
_NORMAL, _PREHEAT, _HOLD = 0, 1, 2
_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def mode_number(mode: str | int) -> int:
    """A DHW mode by name (heat_pump, energy_saver, high_demand, electric) or number."""
    if isinstance(mode, int) and not isinstance(mode, bool):
        if mode not in (1, 2, 3, 4, 5):  # the simulator also takes vacation (5) by number
            raise ConfigurationError(f"DHW mode {mode} is not a mode number 1-5", setting="mode")
        return int(mode)
    key = str(mode).strip().lower().replace("-", "_")
    if key not in MODES:
        raise ConfigurationError(f"unknown DHW mode {mode!r}: use one of {', '.join(MODES)}",
                                 setting="mode")
    return MODES[key]


def setpoint_half_c(setpoint_f: float, min_half_c: int = MIN_HALF_C, max_half_c: int = MAX_HALF_C) -> int:
    """degF -> the wire's half-degC, refused outside the device's range (naming the range)."""
    half = half_c_from_f(float(setpoint_f))
    if not min_half_c <= half <= max_half_c or not math.isfinite(setpoint_f):
        raise ConfigurationError(
            f"setpoint {setpoint_f:g} degF is outside the device's range "
            f"{f_from_half_c(min_half_c):.0f}-{f_from_half_c(max_half_c):.0f} degF", setting="setpoint")
    return half


@dataclass
class LoadShift:
    """Every local day: preheat to ``max_half_c`` for ``preheat_h`` before ``start``-``end``, then
    no heating until ``end`` (freeze protection still acts). A window may cross midnight."""

    start_min: int
    end_min: int
    tz: str = "UTC"
    preheat_h: float = 2.0
    max_half_c: int = MAX_HALF_C
    _state: tuple[float, float, int] = field(default=(math.inf, -math.inf, _NORMAL), repr=False)

    @classmethod
    def parse(cls, text: str, tz: str = "UTC", **kw: Any) -> LoadShift:
        """``"16:00-21:00"`` -> a LoadShift; a clear error for anything else."""
        m = _HHMM.match(str(text))
        if not m:
            raise ConfigurationError(f"load-shift window {text!r} is not HH:MM-HH:MM (e.g. 16:00-21:00)",
                                     setting="shift")
        h0, m0, h1, m1 = (int(x) for x in m.groups())
        if h0 > 23 or h1 > 24 or m0 > 59 or m1 > 59 or (h1 == 24 and m1):
            raise ConfigurationError(f"load-shift window {text!r} has a time outside 00:00-24:00",
                                     setting="shift")
        a, b = h0 * 60 + m0, h1 * 60 + m1
        if a == b % 1440:
            raise ConfigurationError(f"load-shift window {text!r} is empty: start and end are equal",
                                     setting="shift")
        length = (b - a) % 1440
        preheat = kw.get("preheat_h", 2.0)
        if length / 60.0 + preheat > 23.0:
            raise ConfigurationError(f"load-shift window {text!r} leaves no time to heat: keep the "
                                     "window plus the 2 h preheat under 23 h", setting="shift")
        return cls(a, b % 1440, tz, **kw)

    @property
    def label(self) -> str:
        return f"{self.start_min // 60:02d}:{self.start_min % 60:02d}-{self.end_min // 60:02d}:{self.end_min % 60:02d}"

    def _intervals(self, t: float) -> list[tuple[float, float, int]]:
        zone = ZoneInfo(self.tz)
        day = datetime.fromtimestamp(t, zone).date()
        length = (self.end_min - self.start_min) % 1440
        out: list[tuple[float, float, int]] = []
        for d in (day - timedelta(days=1), day, day + timedelta(days=1)):
            w0 = datetime(d.year, d.month, d.day, tzinfo=zone) + timedelta(minutes=self.start_min)
            a = w0.timestamp()
            b = (w0 + timedelta(minutes=length)).timestamp()
            out.append((a - self.preheat_h * 3600.0, a, _PREHEAT))
            out.append((a, b, _HOLD))
        return out

    def _lookup(self, t: float) -> tuple[float, float, int]:
        lo, hi, _ = self._state
        if lo <= t < hi:
            return self._state
        ivs = self._intervals(t)
        for a, b, k in ivs:
            if a <= t < b:
                self._state = (a, b, k)
                return self._state
        prev = max((b for _, b, _ in ivs if b <= t), default=t)
        nxt = min((a for a, _, _ in ivs if a > t), default=t + 86400.0)
        self._state = (prev, nxt, _NORMAL)
        return self._state

    def phase(self, t: float) -> str:
        return ("normal", "preheat", "hold")[self._lookup(t)[2]]

    def next_change(self, t: float) -> float:
        return self._lookup(t)[1]

    def in_window(self, t: float) -> bool:
        return self._lookup(t)[2] == _HOLD

    def adjust(self, t: float, setpoint_c: float, eff_mode: int) -> tuple[float, int]:
        """(setpoint degC, effective mode) the controller aims for at ``t``: mode 0 in the window."""
        kind = self._lookup(t)[2]
        if kind == _HOLD:
            return setpoint_c, 0
        if kind == _PREHEAT and eff_mode:
            return max(setpoint_c, self.max_half_c / 2.0), eff_mode
        return setpoint_c, eff_mode


def heater_options(setpoint_f: float | None = None, mode: str | int | None = None,
                   shift: str | LoadShift | None = None, *, tz: str = "UTC",
                   min_half_c: int = MIN_HALF_C) -> dict[str, Any]:
    """``simulate``'s settings options -> ``Heater`` keyword arguments."""
    out: dict[str, Any] = {}
    if setpoint_f is not None:
        out["setpoint_half_c"] = setpoint_half_c(setpoint_f, min_half_c)
    if mode is not None:
        out["mode"] = mode_number(mode)
    if shift is not None:
        out["schedule"] = shift if isinstance(shift, LoadShift) else LoadShift.parse(shift, tz)
    return out
