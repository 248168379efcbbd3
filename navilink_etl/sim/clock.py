"""Simulated time for the fake cloud: a start instant plus real elapsed time times a speed factor."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """``now() = start + elapsed_real * speed``; timezone-aware UTC throughout.

    The real-time source is ``time.monotonic`` so wall-clock jumps do not move simulated time.
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        start = start if start is not None else datetime.now(UTC).replace(microsecond=0)
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._speed = float(speed)
        self._t0 = time.monotonic()

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self._speed)

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on without a jump in simulated time."""
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        current = self.now()
        self._start, self._t0, self._speed = current, time.monotonic(), float(speed)

    def real_seconds(self, sim_seconds: float) -> float:
        """How many real seconds pass while ``sim_seconds`` of simulated time elapse."""
        return sim_seconds / self._speed

    def __repr__(self) -> str:
        return f"SimClock(start={self._start.isoformat()}, speed={self._speed:g})"
