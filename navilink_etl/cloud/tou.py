"""Shape check of a GET /device/tou plan before anyone saves or prices with it.

A season is a 12-bit month mask, an interval a weekday mask, an inclusive start/end time of day and
integer prices scaled by 10^decimalPoint (the captured PG&E plan; docs/protocol.md 2.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import PayloadError

MAX_SEASONS = 12
MAX_INTERVALS = 64
_INTERVAL_RANGES = {  # key: (low, high, required)
    "week": (0, 255, True), "startHour": (0, 23, True), "startMinute": (0, 59, False),
    "endHour": (0, 23, True), "endMinute": (0, 59, False), "priceMin": (0, 10**9, True),
    "priceMax": (0, 10**9, False), "decimalPoint": (0, 9, False),
}


def _bad(reason: str, device: str | None) -> PayloadError:
    return PayloadError(f"TOU plan rejected: {reason}", device=device)


def _int_in(obj: Mapping[str, Any], key: str, lo: int, hi: int, where: str, device: str | None) -> None:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _bad(f"{where}.{key} is {repr(v)[:40]}, not an integer {lo}-{hi}", device)


def validate_tou_plan(data: Any, *, device: str | None = None) -> dict[str, Any]:
    """``data`` of a GET /device/tou reply; ``{}`` when there is no plan, else ``PayloadError``."""
    if data is None or data == {}:
        return {}
    if not isinstance(data, Mapping):
        raise _bad(f"the reply's data is a {type(data).__name__}, not an object", device)
    info = data.get("touInfo")
    if not isinstance(info, Mapping):
        raise _bad("no touInfo object", device)
    schedule = info.get("schedule")
    if not isinstance(schedule, list) or not 1 <= len(schedule) <= MAX_SEASONS:
        raise _bad(f"touInfo.schedule must be a list of 1-{MAX_SEASONS} seasons", device)
    for i, season in enumerate(schedule):
        where = f"schedule[{i}]"
        if not isinstance(season, Mapping):
            raise _bad(f"{where} is not an object", device)
        _int_in(season, "season", 1, 4095, where, device)
        intervals = season.get("interval")
        if not isinstance(intervals, list) or len(intervals) > MAX_INTERVALS:
            raise _bad(f"{where}.interval must be a list of at most {MAX_INTERVALS}", device)
        for j, iv in enumerate(intervals):
            w = f"{where}.interval[{j}]"
            if not isinstance(iv, Mapping):
                raise _bad(f"{w} is not an object", device)
            for key, (lo, hi, required) in _INTERVAL_RANGES.items():
                if required or key in iv:
                    _int_in(iv, key, lo, hi, w, device)
            start = iv["startHour"] * 60 + iv.get("startMinute", 0)
            end = iv["endHour"] * 60 + iv.get("endMinute", 59)
            if end < start:
                raise _bad(f"{w} ends before it starts", device)
    return dict(data)
