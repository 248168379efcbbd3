"""Prices for the what-if: the ``--tariff`` choice (or the configured tariff) -> $/kWh at any
instants, vectorised. ``flat[:PRICE]``, ``tou[:PLAN.json]`` (the device's saved plan by default,
priced as ``navilink_etl.tariff.tou_rows``), ``csv[:FILE]`` (start,price_per_kwh rows)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from ..config import NaviLinkConfig
from ..errors import ConfigurationError
from ..tariff import flat_rows, load_price_csv, load_tou_dir, tou_rows

PriceFn = Callable[[np.ndarray], np.ndarray]  # epoch seconds -> $/kWh (NaN: no price)


def _tou_fn(rows: list[dict[str, Any]], device: str, tz: str) -> PriceFn:
    own = [r for r in rows if r["device"] == device]
    use = own or [r for r in rows if r["device"] is None]

    def price(t: np.ndarray) -> np.ndarray:
        local = pl.Series("t", (np.asarray(t) * 1e6).astype(np.int64)).cast(pl.Datetime("us", "UTC")) \
            .dt.convert_time_zone(tz)
        month = local.dt.month().to_numpy()
        sunday_first = local.dt.weekday().to_numpy() % 7  # polars: Monday 1 ... Sunday 7
        minute = local.dt.hour().to_numpy().astype(np.int64) * 60 + local.dt.minute().to_numpy()
        season = 1 << (month.astype(np.int64) - 1)
        week = 1 << (7 - sunday_first.astype(np.int64))
        out = np.full(len(t), np.nan)
        for r in reversed(use):  # the first matching row wins, as in tariff.tou_price
            hit = ((r["season_mask"] & season) != 0) & ((r["week_mask"] & week) != 0) \
                & (minute >= r["start_minute"]) & (minute < r["end_minute"])
            out[hit] = r["price_per_kwh"]
        return out

    return price


def price_function(config: NaviLinkConfig, device: str, tariff: str | None = None) -> tuple[PriceFn, str]:
    """(price function, a label naming the tariff). A bad choice is a ConfigurationError."""
    spec = (tariff or config.tariff).strip()
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "flat":
        try:
            p = float(arg) if arg else float(config.price_per_kwh)
        except ValueError:
            raise ConfigurationError(f"--tariff {spec!r}: the flat price must be $/kWh, e.g. flat:0.17",
                                     setting="tariff") from None
        return (lambda t: np.full(len(t), p)), f"flat {p:g} $/kWh"
    if kind == "tou":
        if arg:
            path = Path(arg)
            try:
                rows = tou_rows(orjson.loads(path.read_bytes()), device)
            except OSError as exc:
                raise ConfigurationError(f"--tariff {spec!r}: cannot read {path}: {exc.strerror}",
                                         setting="tariff") from None
            except Exception as exc:
                raise ConfigurationError(f"--tariff {spec!r}: {path} is not a TOU plan ({exc})",
                                         setting="tariff") from None
        else:
            rows = load_tou_dir(Path(config.data_dir), config.price_per_kwh)
            if not [r for r in rows if r["device"] in (device, None)]:
                raise ConfigurationError(
                    f"--tariff tou: no TOU plan saved for {device} under {config.data_dir}/tou/; "
                    "give one as --tariff tou:PLAN.json or use flat:PRICE", setting="tariff")
        return _tou_fn(rows or flat_rows(device, config.price_per_kwh), device, config.timezone), \
            f"TOU plan{' ' + Path(arg).name if arg else ''}"
    if kind == "csv":
        src = Path(arg) if arg else config.price_csv
        if src is None:
            raise ConfigurationError("--tariff csv needs a file: csv:PRICES.csv (start,price_per_kwh)",
                                     setting="tariff")
        prices = load_price_csv(Path(src), config.timezone)
        if not prices:
            raise ConfigurationError(f"price CSV {src} has no rows", setting="tariff")
        starts = np.array([r["start_at"].timestamp() for r in prices])
        vals = np.array([r["price_per_kwh"] for r in prices])

        def csv_price(t: np.ndarray) -> np.ndarray:
            i = np.searchsorted(starts, np.asarray(t), side="right") - 1
            return np.where(i >= 0, vals[np.maximum(i, 0)], np.nan)

        return csv_price, f"prices from {Path(src).name}"
    raise ConfigurationError(f"unknown tariff {spec!r}: use flat[:PRICE], tou[:PLAN.json] or csv[:FILE]",
                             setting="tariff")


def is_tou(label: str) -> bool:
    return label.startswith("TOU")
