"""Electricity prices for the warehouse: flat, the device's own TOU plan, or a price CSV, copied
into the tables ``tariff_tou`` (from ``<data_dir>/tou/<mac>.json``, GET /device/tou replies) and
``tariff_csv`` (``NAVILINK_PRICE_CSV``: start,price_per_kwh; each price holds until the next)."""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from .config import NaviLinkConfig
from .errors import ConfigurationError, PayloadError
from .identity import normalize_mac

log = logging.getLogger(__name__)

TOU_DIR = "tou"

TOU_COLUMNS: dict[str, str] = {
    "device": "VARCHAR", "season_mask": "INTEGER", "week_mask": "INTEGER",
    "start_minute": "INTEGER", "end_minute": "INTEGER", "price_per_kwh": "DOUBLE",
    "price_max_per_kwh": "DOUBLE",
}  # fmt: skip
CSV_COLUMNS: dict[str, str] = {"start_at": "TIMESTAMPTZ", "price_per_kwh": "DOUBLE"}


def week_bit(day: datetime) -> int:
    """The TOU plan's weekday bit: Sunday 128, Monday 64 ... Saturday 2 (docs/protocol.md 2.4)."""
    sunday_first = (day.weekday() + 1) % 7  # Sunday 0 ... Saturday 6
    return 1 << (7 - sunday_first)


def season_bit(day: datetime) -> int:
    """Month m is bit m-1."""
    return 1 << (day.month - 1)


def _tou_info(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept the captured wrapper, the REST envelope, its ``data`` or ``touInfo`` itself."""
    node: Any = obj
    for _ in range(4):
        if isinstance(node, Mapping) and "schedule" in node:
            return node
        if isinstance(node, Mapping) and "touInfo" in node:
            node = node["touInfo"]
        elif isinstance(node, Mapping) and "data" in node:
            node = node["data"]
        else:
            break
    raise PayloadError("TOU plan has no 'schedule' (expected a GET /device/tou reply)", field="schedule")


# Each interval field's range (docs/protocol.md 2.4): bit masks, clock fields, price scale.
_TOU_RANGES: dict[str, tuple[int, int]] = {
    "week": (1, 255), "startHour": (0, 23), "startMinute": (0, 59), "endHour": (0, 23),
    "endMinute": (0, 59), "decimalPoint": (0, 9), "priceMin": (0, 10**9), "priceMax": (0, 10**9),
}  # fmt: skip


def _tou_int(obj: Mapping[str, Any], key: str, default: int | None, lo: int, hi: int) -> int:
    v = obj.get(key, default)
    if type(v) is not int or not lo <= v <= hi:
        raise PayloadError(f"TOU plan field {key}={repr(v)[:40]} is not an integer in {lo}..{hi}",
                           field=key)
    return v


def tou_rows(plan: Mapping[str, Any], device: str | None = None) -> list[dict[str, Any]]:
    """A TOU plan -> one row per (season, interval). Price = priceMin / 10^decimalPoint $/kWh.

    ``priceMin``/``priceMax`` are the plan's two rates per window (baseline and above baseline
    for PG&E plans); costs use ``priceMin``, ``price_max_per_kwh`` is kept for reference. Raises
    ``PayloadError`` naming the field when the plan is not one this function can price.
    """
    if not isinstance(plan, Mapping):
        raise PayloadError(f"TOU plan is a {type(plan).__name__}, not an object", field="plan")
    schedule = _tou_info(plan)["schedule"]
    if not isinstance(schedule, list):
        raise PayloadError("TOU plan 'schedule' is not a list", field="schedule")
    rows: list[dict[str, Any]] = []
    for season in schedule:
        if not isinstance(season, Mapping) or not isinstance(season.get("interval", []), list):
            raise PayloadError("TOU plan season is not an object with an 'interval' list", field="season")
        mask = _tou_int(season, "season", None, 1, 4095)
        for iv in season.get("interval", []):
            if not isinstance(iv, Mapping):
                raise PayloadError("TOU plan interval is not an object", field="interval")
            f = {k: _tou_int(iv, k, {"startMinute": 0, "endMinute": 59, "decimalPoint": 0}.get(k), lo, hi)
                 for k, (lo, hi) in _TOU_RANGES.items() if k != "priceMax"}
            f["priceMax"] = _tou_int(iv, "priceMax", f["priceMin"], *_TOU_RANGES["priceMax"])
            start = f["startHour"] * 60 + f["startMinute"]
            end = f["endHour"] * 60 + f["endMinute"] + 1  # endHour:endMinute is inclusive (15:59 ends at 16:00)
            if end <= start:
                raise PayloadError(f"TOU plan interval ends ({end} min) before it starts ({start} min)",
                                   field="endHour")
            scale = 10.0 ** f["decimalPoint"]
            rows.append({
                "device": device, "season_mask": mask, "week_mask": f["week"],
                "start_minute": start, "end_minute": end,
                "price_per_kwh": f["priceMin"] / scale, "price_max_per_kwh": f["priceMax"] / scale,
            })  # fmt: skip
    return rows


def tou_price(rows: list[dict[str, Any]], at: datetime, timezone: str) -> float | None:
    """Reference implementation of the SQL lookup: the price in force at ``at`` (aware)."""
    local = at.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    for r in rows:
        if (r["season_mask"] & season_bit(local) and r["week_mask"] & week_bit(local)
                and r["start_minute"] <= minute < r["end_minute"]):
            return float(r["price_per_kwh"])
    return None


def flat_rows(device: str | None, price_per_kwh: float) -> list[dict[str, Any]]:
    """One all-year, all-week, all-day row at the flat price: the fallback for a bad plan."""
    return [{"device": device, "season_mask": 4095, "week_mask": 254, "start_minute": 0,
             "end_minute": 1440, "price_per_kwh": price_per_kwh, "price_max_per_kwh": price_per_kwh}]


def load_tou_dir(data_dir: Path, flat_price: float | None = None) -> list[dict[str, Any]]:
    """Every saved plan: ``tou/<mac>.json`` applies to that device, ``tou/default.json`` to all.

    A plan that cannot be read or priced is skipped with a warning; with ``flat_price`` its device
    (or, for the default plan, every device) is priced at the flat tariff instead.
    """
    rows: list[dict[str, Any]] = []
    folder = data_dir / TOU_DIR
    if not folder.is_dir():
        return rows
    for path in sorted(folder.glob("*.json")):
        device = None if path.stem == "default" else normalize_mac(path.stem)
        if path.stem != "default" and device is None:
            log.warning("ignoring %s: its name is neither a MAC nor 'default'", path)
            continue
        try:
            rows.extend(tou_rows(orjson.loads(path.read_bytes()), device))
        except Exception as exc:  # a bad plan must not stop views/report/query
            why = exc.message if isinstance(exc, PayloadError) else f"{type(exc).__name__}: {exc}"
            fallback = "the flat tariff" if flat_price is not None else "no TOU price"
            log.warning("skipping the TOU plan %s (%s); %s uses %s instead", path, why,
                        f"device {device}" if device else "every device without its own plan",
                        fallback)
            if flat_price is not None:
                rows.extend(flat_rows(device, flat_price))
    return rows


def _parse_time(text: str, timezone: str) -> datetime:
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:  # naive times in a price CSV are local wall-clock times
        t = t.replace(tzinfo=ZoneInfo(timezone))
    return t.astimezone(UTC)


def load_price_csv(path: Path, timezone: str) -> list[dict[str, Any]]:
    """A CSV with a header ``start,price_per_kwh`` (ISO times; naive = local) -> sorted rows."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            fields = set(reader.fieldnames or [])
            if not {"start", "price_per_kwh"} <= fields:
                raise ConfigurationError(
                    f"price CSV {path} needs the columns start,price_per_kwh (has {sorted(fields)})")
            rows = [{"start_at": _parse_time(r["start"], timezone),
                     "price_per_kwh": float(r["price_per_kwh"])} for r in reader]
    except OSError as exc:
        raise ConfigurationError(f"cannot read NAVILINK_PRICE_CSV {path}: {exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"bad row in price CSV {path}: {exc}") from None
    return sorted(rows, key=lambda r: r["start_at"])


def _create(con: Any, name: str, columns: dict[str, str], rows: list[dict[str, Any]],
            temp: bool) -> None:
    kind = "TEMP TABLE" if temp else "TABLE"
    cols = ", ".join(f'"{c}" {t}' for c, t in columns.items())
    con.execute(f"CREATE OR REPLACE {kind} {name} ({cols})")
    if rows:
        marks = ", ".join("?" for _ in columns)
        con.executemany(f"INSERT INTO {name} VALUES ({marks})",
                        [[r[c] for c in columns] for r in rows])


def write_price_tables(con: Any, config: NaviLinkConfig, *, temp: bool = False) -> None:
    """Create ``tariff_tou`` and ``tariff_csv`` (empty unless that tariff is configured)."""
    tou = load_tou_dir(Path(config.data_dir), config.price_per_kwh) if config.tariff == "tou" else []
    prices: list[dict[str, Any]] = []
    if config.tariff == "csv":
        if config.price_csv is None:
            raise ConfigurationError(
                "NAVILINK_TARIFF=csv needs NAVILINK_PRICE_CSV (a start,price_per_kwh file)")
        prices = load_price_csv(Path(config.price_csv), config.timezone)
    _create(con, "tariff_tou", TOU_COLUMNS, tou, temp)
    _create(con, "tariff_csv", CSV_COLUMNS, prices, temp)
