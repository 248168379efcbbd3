"""Write tiny status / energy datasets in the store's layout, from a few readable fields per sample."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from navilink_etl.collect.store import energy_schema, status_file_schema
from navilink_etl.status import KNOWN_KEYS, PARSER_VERSION

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # a Monday

# A quiet tank at 50 degC in a 20 degC room, setpoint 50 degC, Heat Pump mode.
BASE: dict[str, int] = {
    "command": 16777219, "operationMode": 0, "operationBusy": 1, "dhwUse": 1,
    "dhwTemperature": 100, "dhwTemperatureSetting": 100, "tankUpperTemperature": 500,
    "tankLowerTemperature": 500, "ambientTemperature": 200, "compUse": 1, "heatUpperUse": 1,
    "heatLowerUse": 1, "currentInstPower": 1, "dhwOperationSetting": 1, "evaFanUse": 1,
    "antiLegionellaOperationBusy": 1, "totalEnergyCapacity": 1000, "availableEnergyCapacity": 0,
    "currentHeatUse": 1, "dhwChargePer": 100,
}  # fmt: skip

# Readable shorthands -> wire keys and encodings.
SHORT: dict[str, tuple[str, Any]] = {
    "mode": ("operationMode", int), "dhw_mode": ("dhwOperationSetting", int),
    "power": ("currentInstPower", int),
    "comp": ("compUse", lambda on: 2 if on else 1), "upper": ("heatUpperUse", lambda on: 2 if on else 1),
    "lower": ("heatLowerUse", lambda on: 2 if on else 1), "draw": ("dhwUse", lambda on: 2 if on else 1),
    "upper_c": ("tankUpperTemperature", lambda c: round(c * 10)),
    "lower_c": ("tankLowerTemperature", lambda c: round(c * 10)),
    "ambient_c": ("ambientTemperature", lambda c: round(c * 10)),
    "setpoint_c": ("dhwTemperatureSetting", lambda c: round(c * 2)),
    "total": ("totalEnergyCapacity", int), "available": ("availableEnergyCapacity", int),
}  # fmt: skip


def status_rows(device: str, samples: Iterable[tuple[float, Mapping[str, Any]]],
                t0: datetime = T0) -> list[dict[str, Any]]:
    """``samples``: (seconds after t0, shorthand fields); unspecified fields repeat the last value."""
    state = dict(BASE)
    rows = []
    for i, (sec, fields) in enumerate(samples):
        for k, v in fields.items():
            key, enc = SHORT.get(k, (k, int))
            state[key] = enc(v)
        at = t0 + timedelta(seconds=sec)
        row: dict[str, Any] = dict.fromkeys(KNOWN_KEYS)
        row.update(state)
        row.update({
            "device": device, "received_at": at, "date": at.date(), "source": "test",
            "kind": "reply", "session_id": str(i), "client_id": "t",
            "parser_version": PARSER_VERSION, "content_hash": f"{device}-{i}", "extra_json": None,
        })
        rows.append(row)
    return rows


def write_status(data_dir: Path, rows: list[dict[str, Any]], part: str = "part-0") -> None:
    schema = status_file_schema()
    df = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    for (device, day), g in df.group_by(["device", "date"]):
        folder = data_dir / "status" / f"device={device}" / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        g.write_parquet(folder / f"{part}.parquet")


def write_energy(data_dir: Path, device: str, days: Iterable[tuple[date, int, int]]) -> None:
    rows = [{"device": device, "day": d, "hp_wh": hp, "he_wh": he, "hp_h": hp // 450,
             "he_h": he // 5000, "fetched_at": T0 + timedelta(days=3), "source": "test"}
            for d, hp, he in days]
    folder = data_dir / "energy" / f"device={device}"
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, schema=energy_schema()).write_parquet(folder / "part-0.parquet")
