"""What the store accepts: the range of every value it spools, from the Parquet column type and
physics. A row outside them is quarantined with the field, the value and the reason."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from ..identity import is_mac

# Dates the store will name a partition after: wide enough for any simulation, and no
# ``date=9999-...`` or ``date=0001-...`` folder. Importers use a narrower window for wire times.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
_EPOCH = date(1970, 1, 1)
FIRST_EPOCH_DAY = (FIRST_DAY - _EPOCH).days
LAST_EPOCH_DAY = (LAST_DAY - _EPOCH).days
FIRST_US = FIRST_EPOCH_DAY * 86_400_000_000
END_US = (LAST_EPOCH_DAY + 1) * 86_400_000_000  # exclusive

# A day's energy: the heater's elements and compressor together draw under 5 kW, so a day holds
# under 120 kWh; 1,000 kWh leaves room for any model while refusing "all ones" counters.
MAX_DAY_WH = 1_000_000
MAX_DAY_H = 24

_INT_RANGE = {"i64": (-(2**63), 2**63 - 1), "i32": (-(2**31), 2**31 - 1)}
_REQUIRED = {
    "status": ("device", "received_at", "date", "content_hash"),
    "energy": ("device", "day", "fetched_at"),
    "events": ("at", "date", "kind"),
    "quarantine": ("received_at", "date"),
}
_ENERGY_RANGE = {"hp_wh": (0, MAX_DAY_WH, "Wh"), "he_wh": (0, MAX_DAY_WH, "Wh"),
                 "hp_h": (0, MAX_DAY_H, "h"), "he_h": (0, MAX_DAY_H, "h")}


def epoch_us(t: datetime) -> int:
    """Microseconds since 1970 of an aware datetime (exact integer arithmetic, any year)."""
    if t.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    d = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def epoch_day(us: int) -> int:
    return us // 86_400_000_000


def time_problem(col: str, t: Any) -> str | None:
    """Why ``t`` cannot be a stored time (not aware, or outside FIRST_DAY..LAST_DAY), or None."""
    if not isinstance(t, datetime) or t.tzinfo is None:
        return f"{col}={shown(t)} is not a timezone-aware time"
    if not FIRST_US <= epoch_us(t) < END_US:
        return f"{col}={t.isoformat()} is outside {FIRST_DAY}..{LAST_DAY}"
    return None


def shown(value: Any) -> str:
    """A value as it appears in a reason: repr, at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: the spool's JSON cannot hold it
        return False
    return True


Columns = tuple[tuple[str, str], ...]  # (column, kind) with kind one of _KINDS


def columns(schema: Mapping[str, Any]) -> Columns:
    """A dataset's polars schema -> (column, kind) pairs the checks run on (compile once)."""
    out = []
    for col, dtype in schema.items():
        if dtype == pl.String:
            kind = "str"
        elif dtype == pl.Int64 or dtype == pl.Int32:
            kind = "i64" if dtype == pl.Int64 else "i32"
        elif dtype == pl.Float64:
            kind = "f64"
        elif isinstance(dtype, pl.Datetime):
            kind = "time"
        elif dtype == pl.Date:
            kind = "day"
        else:
            raise ValueError(f"no range check for column {col} of type {dtype}")
        out.append((col, kind))
    return tuple(out)


def us_in_window(us: object) -> bool:
    """True for epoch microseconds between FIRST_DAY and the end of LAST_DAY."""
    return type(us) is int and FIRST_US <= us < END_US


def _value_problem(col: str, v: Any, kind: str) -> str | None:
    if kind == "str":
        if not isinstance(v, str):
            return f"{col}={shown(v)} is not text"
        return None if v.isascii() or _is_utf8(v) else f"{col}={shown(v)} is not valid Unicode text"
    if kind in _INT_RANGE:
        lo, hi = _INT_RANGE[kind]
        if type(v) is not int:
            return f"{col}={shown(v)} is not an integer"
        if not lo <= v <= hi:
            bits = 64 if kind == "i64" else 32
            return f"{col}={shown(v)} does not fit the Int{bits} column ({lo}..{hi})"
        return None
    if kind == "f64":
        if type(v) not in (int, float) or not math.isfinite(v):
            return f"{col}={shown(v)} is not a finite number"
        return None if abs(v) < 1e15 else f"{col}={shown(v)} is out of range"
    if kind == "time":
        return None if us_in_window(v) else f"{col}={shown(v)} is not a time in {FIRST_DAY}..{LAST_DAY}"
    if type(v) is not int or not FIRST_EPOCH_DAY <= v <= LAST_EPOCH_DAY:
        return f"{col}={shown(v)} is not a day in {FIRST_DAY}..{LAST_DAY}"
    return None


def payload_problem(dataset: str, payload: Any, cols: Columns) -> str | None:
    """Why a spool payload (times as epoch microseconds, dates as epoch days) cannot be written to
    the dataset's Parquet files, or None when it can."""
    if not isinstance(payload, Mapping):
        return f"a {dataset} row is a {type(payload).__name__}, not an object"
    for col in _REQUIRED[dataset]:
        if payload.get(col) is None:
            return f"{col} is missing"
    for col, kind in cols:
        v = payload.get(col)
        if v is not None and (why := _value_problem(col, v, kind)):
            return why
    dev = payload.get("device")
    if dev is not None and not is_mac(dev):
        return f"device={shown(dev)} is not a MAC (12 lowercase hex digits)"
    time_col = {"status": "received_at", "events": "at", "quarantine": "received_at"}.get(dataset)
    if time_col and payload["date"] != epoch_day(payload[time_col]):
        return f"date={payload['date']} is not the UTC day of {time_col}"
    if dataset == "energy":
        for col, (lo, hi, unit) in _ENERGY_RANGE.items():
            v = payload.get(col)
            if v is not None and not lo <= v <= hi:
                return f"{col}={shown(v)} is outside {lo}..{hi} {unit} for one day"
    return None
