"""Electricity prices for the warehouse: flat, the device's own TOU plan, or a price CSV, copied
into the tables ``tariff_tou`` (from ``<data_dir>/tou/<mac>.json``, GET /device/tou replies) and
``tariff_csv`` (``NAVILINK_PRICE_CSV``: start,price_per_kwh; each price holds until the next)."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from .config import NaviLinkConfig
from .errors import ConfigurationError

TOU_DIR = "tou"

TOU_COLUMNS: dict[str, str] = {
    "device": "VARCHAR", "season_mask": "INTEGER", "week_mask": "INTEGER",
    "start_minute": "INTEGER", "end_minute": "INTEGER", "price_per_kwh": "DOUBLE",
    "price_max_per_kwh": "DOUBLE",
}  # fmt: skip
CSV_COLUMNS: dict[str, str] = {"start_at": "TIMESTAMPTZ", "price_per_kwh": "DOUBLE"}


def week_bit(day: datetime) -> int:
    """The TOU plan's weekday bit: Sunday 128, Monday 64 ... Saturday 2 (PROTOCOL.md 2.4)."""
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
    raise ConfigurationError("TOU plan has no 'schedule' (expected a GET /device/tou reply)")


def tou_rows(plan: Mapping[str, Any], device: str | None = None) -> list[dict[str, Any]]:
    """A TOU plan -> one row per (season, interval). Price = priceMin / 10^decimalPoint $/kWh.

    ``priceMin``/``priceMax`` are the plan's two rates per window (baseline and above baseline
    for PG&E plans); costs use ``priceMin``, ``price_max_per_kwh`` is kept for reference.
    """
    rows: list[dict[str, Any]] = []
    for season in _tou_info(plan)["schedule"]:
        for iv in season.get("interval", []):
            scale = 10.0 ** int(iv.get("decimalPoint", 0))
            rows.append({
                "device": device,
                "season_mask": int(season["season"]),
                "week_mask": int(iv["week"]),
                "start_minute": int(iv["startHour"]) * 60 + int(iv.get("startMinute", 0)),
                # endHour:endMinute is inclusive (15:59 ends the window at 16:00)
                "end_minute": int(iv["endHour"]) * 60 + int(iv.get("endMinute", 59)) + 1,
                "price_per_kwh": int(iv["priceMin"]) / scale,
                "price_max_per_kwh": int(iv.get("priceMax", iv["priceMin"])) / scale,
            })
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


def load_tou_dir(data_dir: Path) -> list[dict[str, Any]]:
    """Every saved plan: ``tou/<mac>.json`` applies to that device, ``tou/default.json`` to all."""
    rows: list[dict[str, Any]] = []
    folder = data_dir / TOU_DIR
    if not folder.is_dir():
        return rows
    for path in sorted(folder.glob("*.json")):
        try:
            plan = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigurationError(f"cannot read the TOU plan {path}: {exc}") from None
        device = None if path.stem == "default" else path.stem.lower()
        rows.extend(tou_rows(plan, device))
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
    tou = load_tou_dir(Path(config.data_dir)) if config.tariff == "tou" else []
    prices: list[dict[str, Any]] = []
    if config.tariff == "csv":
        if config.price_csv is None:
            raise ConfigurationError(
                "NAVILINK_TARIFF=csv needs NAVILINK_PRICE_CSV (a start,price_per_kwh file)")
        prices = load_price_csv(Path(config.price_csv), config.timezone)
    _create(con, "tariff_tou", TOU_COLUMNS, tou, temp)
    _create(con, "tariff_csv", CSV_COLUMNS, prices, temp)
