"""Hot-water draw schedules: seeded household days (showers, sinks, baths, appliances) and the
DOE 24-hour simulated-use patterns (Low 38 / Medium 55 / High 84 gal) used for UEF tests.

A stream yields non-overlapping draws in time order, generated lazily day by day, so a device
can run for any length of simulated time. Times are UTC epoch seconds; flows are the tank's own
outflow in L/min.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

L_PER_GAL = 3.785
_DAY_S = 86400


@dataclass(frozen=True, slots=True)
class Draw:
    draw_id: int
    start: float  # epoch s
    end: float
    flow_lpm: float
    kind: str  # shower | bath | sink | dishwasher | washer | doe

    @property
    def volume_l(self) -> float:
        return self.flow_lpm * (self.end - self.start) / 60.0


# DOE 24-h simulated-use patterns (10 CFR 430 subpart B appendix E, table III.1-4 shape):
# (minutes after the test starts, gallons, gpm). Totals: 38 / 55 / 84 gal.
DOE_PATTERNS: dict[str, tuple[tuple[int, float, float], ...]] = {
    "low": (
        (0, 15.0, 1.0), (30, 2.0, 1.0), (60, 1.0, 1.0), (630, 6.0, 1.0), (690, 4.0, 1.0),
        (720, 1.0, 1.0), (765, 1.0, 1.0), (770, 1.0, 1.0), (960, 1.0, 1.0), (975, 2.0, 1.0),
        (1005, 2.0, 1.0), (1020, 2.0, 1.0),
    ),
    "medium": (
        (0, 15.0, 1.7), (30, 2.0, 1.0), (100, 9.0, 1.7), (630, 9.0, 1.7), (690, 5.0, 1.7),
        (720, 1.0, 1.0), (765, 1.0, 1.0), (770, 1.0, 1.0), (975, 2.0, 1.0), (990, 1.0, 1.0),
        (1005, 2.0, 1.7), (1020, 7.0, 1.7),
    ),
    "high": (
        (0, 27.0, 3.0), (30, 2.0, 1.0), (40, 1.0, 1.0), (100, 9.0, 1.7), (630, 15.0, 3.0),
        (690, 5.0, 1.7), (720, 1.0, 1.0), (765, 1.0, 1.0), (770, 1.0, 1.0), (960, 2.0, 1.0),
        (975, 2.0, 1.0), (990, 2.0, 1.7), (1005, 2.0, 1.7), (1020, 14.0, 3.0),
    ),
}  # fmt: skip


def doe_gallons(pattern: str) -> float:
    return sum(g for _, g, _ in DOE_PATTERNS[pattern])


class DrawStream:
    """Base: lazily generated, time-ordered, non-overlapping draws."""

    def __init__(self) -> None:
        self._buf: list[tuple[float, float, float, str]] = []
        self._next_id = 1
        self._last_end = -math.inf
        self._it: Iterator[list[tuple[float, float, float, str]]] = self._days()

    def _days(self) -> Iterator[list[tuple[float, float, float, str]]]:
        return iter(())

    def next(self) -> Draw | None:
        """The next draw (after the previous one ended), or None if the stream is finished."""
        while not self._buf:
            try:
                day = next(self._it)
            except StopIteration:
                return None
            self._buf = sorted(day, reverse=True)
        start, dur, flow, kind = self._buf.pop()
        start = max(start, self._last_end + 20.0)
        d = Draw(self._next_id, start, start + dur, flow, kind)
        self._next_id += 1
        self._last_end = d.end
        return d


class NoDraws(DrawStream):
    pass


class DoeDraws(DrawStream):
    """The DOE 24-h pattern starting at ``start``; repeated daily when ``repeat``."""

    def __init__(self, pattern: str, start: float, *, repeat: bool = False) -> None:
        if pattern not in DOE_PATTERNS:
            raise ValueError(f"DOE pattern must be one of {sorted(DOE_PATTERNS)}")
        self.pattern, self.start, self.repeat = pattern, start, repeat
        super().__init__()

    def _days(self) -> Iterator[list[tuple[float, float, float, str]]]:
        day = 0
        while True:
            t0 = self.start + day * _DAY_S
            yield [(t0 + m * 60.0, gal / gpm * 60.0, gpm * L_PER_GAL, "doe")
                   for m, gal, gpm in DOE_PATTERNS[self.pattern]]
            day += 1
            if not self.repeat:
                return


class HouseholdDraws(DrawStream):
    """A seeded household: 30-90 gal/day, showers 1.5-2.5 gpm for 5-12 min, sinks, appliances.

    ``utc_offset_h`` places the household's clock (morning showers at 6-8 local time).
    """

    def __init__(self, seed: int, start: float, *, gal_per_day: float | None = None,
                 utc_offset_h: float = 0.0) -> None:
        self.seed = seed
        self.start = start
        self.utc_offset_h = utc_offset_h
        rng = np.random.default_rng([seed & 0xFFFFFFFF, 104729])
        self.gal_per_day = gal_per_day if gal_per_day is not None else float(rng.uniform(40, 70))
        self.people = int(rng.integers(2, 5))
        super().__init__()

    def _days(self) -> Iterator[list[tuple[float, float, float, str]]]:
        off = self.utc_offset_h * 3600.0
        day = math.floor((self.start + off) / _DAY_S)
        while True:
            draws = [d for d in self.day_draws(day) if d[0] + d[1] > self.start]
            yield [(max(s, self.start), e - max(0.0, self.start - s), f, k) for s, e, f, k in draws]
            day += 1

    def day_draws(self, day: int) -> list[tuple[float, float, float, str]]:
        """(start epoch s, duration s, L/min, kind) for local day number ``day``."""
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, 15485863, day & 0xFFFFFFFF])
        weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        base = day * _DAY_S - self.utc_offset_h * 3600.0
        out: list[tuple[float, float, float, str]] = []

        def at(h0: float, h1: float) -> float:
            return base + float(rng.uniform(h0, h1)) * 3600.0

        gpm = L_PER_GAL
        for _ in range(self.people):
            if rng.random() < 0.85:
                morning = rng.random() < 0.65
                t = at(8.0, 10.5) if weekend and morning else at(6.0, 8.5) if morning else at(19.0, 22.5)
                out.append((t, float(rng.uniform(5, 12)) * 60.0, float(rng.uniform(1.5, 2.5)) * gpm, "shower"))
        if rng.random() < (0.2 if weekend else 0.08):
            out.append((at(19.0, 21.0), float(rng.uniform(20, 25)) / 4.0 * 60.0, 4.0 * gpm, "bath"))
        for _ in range(int(rng.integers(8, 20))):
            gal = float(rng.uniform(0.25, 1.2))
            flow = float(rng.uniform(1.0, 1.5))
            out.append((at(6.5, 22.5), gal / flow * 60.0, flow * gpm, "sink"))
        if rng.random() < 0.55:
            t = at(19.5, 22.0)
            for i in range(3):
                out.append((t + i * 1200.0, 1.5 / 1.5 * 60.0, 1.5 * gpm, "dishwasher"))
        if rng.random() < (0.45 if weekend else 0.2):
            t = at(9.0, 17.0)
            for i in range(2):
                out.append((t + i * 1500.0, 5.0 / 3.0 * 60.0, 3.0 * gpm, "washer"))
        # scale durations toward today's target volume (30-90 gal)
        target = self.gal_per_day * (1.15 if weekend else 1.0) * float(rng.lognormal(0.0, 0.2))
        target = min(90.0, max(30.0, target))
        total = sum(d * f / 60.0 for _, d, f, _ in out) / L_PER_GAL
        scale = min(1.6, max(0.6, target / total)) if total > 0 else 1.0
        return [(s, d * scale, f, k) for s, d, f, k in out]
