"""Boundary temperatures for the simulator: seasonal cold-water inlet and the room around the tank.

Everything is a deterministic function of (seed, time): a synthetic outdoor series (season +
diurnal swing + smooth seeded noise) drives the garage; the basement follows it weakly; a
conditioned room barely moves. Times are UTC epoch seconds.
"""

from __future__ import annotations

import math

import numpy as np

LOCATIONS = ("conditioned", "basement", "garage")
_DAY_S = 86400.0
_YEAR_DAYS = 365.25
_ROOM_COOLING_K = {"conditioned": 0.3, "basement": 1.5, "garage": 1.0}


def _season(t: float, peak_doy: float) -> float:
    """cos of the annual phase, 1 on ``peak_doy`` (day of year counted from 1970-01-01 phase)."""
    doy = (t / _DAY_S) % _YEAR_DAYS
    return math.cos(2.0 * math.pi * (doy - peak_doy) / _YEAR_DAYS)


def inlet_c(t: float, *, mean_c: float = 14.0, amplitude_k: float = 5.5) -> float:
    """Mains water temperature: annual swing lagging the air (warmest early September)."""
    return mean_c + amplitude_k * _season(t, 245.0)


class Weather:
    """Outdoor and room temperature for one site; hourly knots, linear in between, cached per day."""

    def __init__(self, seed: int, location: str = "basement", *, outdoor_mean_c: float = 12.0,
                 outdoor_amplitude_k: float = 12.0, fixed_room_c: float | None = None) -> None:
        """``fixed_room_c`` holds the room at one temperature (a test chamber: no pull-down)."""
        if location not in LOCATIONS:
            raise ValueError(f"location must be one of {LOCATIONS}, not {location!r}")
        self.seed = seed
        self.location = location
        self.outdoor_mean_c = outdoor_mean_c
        self.outdoor_amplitude_k = outdoor_amplitude_k
        self.fixed_room_c = fixed_room_c
        self._days: dict[int, list[float]] = {}

    def _noise_day(self, day: int) -> np.ndarray:
        """25 hourly knots of smooth noise for UTC day ``day`` (continuous across midnight)."""
        # weather front: one value per 6 h from a per-day stream, blended linearly
        def fronts(d: int) -> np.ndarray:
            rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 7919, d & 0xFFFFFFFF])
            return rng.normal(0.0, 3.0, 4)

        knots = np.concatenate([fronts(day), fronts(day + 1)[:1]])
        return np.interp(np.arange(25) / 6.0, np.arange(5), knots)

    def _outdoor_day(self, day: int) -> list[float]:
        """25 hourly knots (degC) of UTC day ``day``, as Python floats (read once a minute)."""
        knots = self._days.get(day)
        if knots is not None:
            return knots
        hours = np.arange(25, dtype=float)
        t = day * _DAY_S + hours * 3600.0
        doy = (t / _DAY_S) % _YEAR_DAYS
        season = np.cos(2.0 * np.pi * (doy - 200.0) / _YEAR_DAYS)
        diurnal = np.cos(2.0 * np.pi * (hours - 15.0) / 24.0)
        arr = (self.outdoor_mean_c + self.outdoor_amplitude_k * season + 5.0 * diurnal
               + self._noise_day(day))
        if len(self._days) > 64:
            self._days.clear()
        knots = self._days[day] = arr.tolist()
        return knots

    def outdoor_c(self, t: float) -> float:
        day = math.floor(t / _DAY_S)
        h = (t - day * _DAY_S) / 3600.0
        arr = self._outdoor_day(day)
        i = min(int(h), 23)
        f = h - i
        return arr[i] * (1.0 - f) + arr[i + 1] * f

    def room_c(self, t: float) -> float:
        """Air temperature at the heat pump's intake (before its own cooling of the room)."""
        if self.fixed_room_c is not None:
            return self.fixed_room_c
        if self.location == "conditioned":
            return 21.5 + 1.5 * _season(t, 200.0) + 0.5 * math.cos(2 * math.pi * ((t / 3600.0) % 24 - 17) / 24)
        if self.location == "basement":
            # earth-coupled: a damped, lagged copy of the season plus a trace of the weather
            return 16.5 + 3.5 * _season(t, 230.0) + 0.15 * (self.outdoor_c(t - 6 * 3600.0) - self.outdoor_mean_c)
        # garage: follows outdoor air with some lag and a buffer toward the house
        lagged = 0.5 * self.outdoor_c(t - 2 * 3600.0) + 0.5 * self.outdoor_c(t - 5 * 3600.0)
        return 0.75 * lagged + 0.25 * 16.0

    def room_cooling_k(self) -> float:
        """How far the running heat pump pulls its room down (steady state, K)."""
        if self.fixed_room_c is not None:
            return 0.0
        return _ROOM_COOLING_K[self.location]
