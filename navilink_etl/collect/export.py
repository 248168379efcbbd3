"""Export raw status samples: CSV in the original monitor's columns (degF), Parquet, or JSONL.

The JSONL is exactly what ``import`` reads (``received_at``, ``topic``, ``message``), so an
export can be imported elsewhere and the rows keep their identity (same content hash).
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any, Literal

import orjson
import polars as pl

from ..config import NaviLinkConfig
from ..errors import StoreError
from ..identity import require_mac
from ..protocol import DEVICE_TYPE, PROTOCOL_VERSION
from ..status import KNOWN_KEYS, DeviceStatus, RawStatus, c_to_f
from .spool import storage_error
from .store import scan_dataset

# The original navien-nwp500-python tank monitor's columns (examples/tank_monitoring_production.py:
# timestamp, the charge, DHW temperature and setpoint, mode, power, relay flags, error, RSSI,
# busy, compressor_use, device_connected), with the charge named as in its README's CSV sample and the tank sensors added, all
# temperatures in degF. ``timestamp`` is ISO-8601 UTC with offset (the original wrote naive local
# time); ``device`` is added so several heaters fit in one file.
CSV_COLUMNS: tuple[str, ...] = (
    "timestamp", "device", "dhw_charge_percent", "dhw_temperature", "dhw_temperature_setting",
    "operation_mode", "current_inst_power", "tank_upper_temperature", "tank_lower_temperature",
    "ambient_temperature", "comp_use", "heat_upper_use", "heat_lower_use", "eva_fan_use",
    "dhw_use", "dhw_operation_setting", "error_code", "wifi_rssi", "operation_busy",
    "compressor_use", "device_connected",
)  # fmt: skip

Format = Literal["csv", "parquet", "jsonl"]


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _csv_row(r: dict[str, Any]) -> list[Any]:
    st = DeviceStatus(raw=RawStatus(values={k: r.get(k) for k in KNOWN_KEYS}, extras={}))
    return [
        # one timestamp format for every row (pandas' to_datetime needs it); the store keeps us
        r["received_at"].isoformat(timespec="microseconds"), r["device"], st.dhw_charge_percent,
        _round(st.dhw_temperature), _round(st.dhw_temperature_setting), st.operation_mode,
        st.current_inst_power, _round(c_to_f(st.tank_upper_c)), _round(c_to_f(st.tank_lower_c)),
        _round(c_to_f(st.ambient_c)), r.get("compUse"), r.get("heatUpperUse"), r.get("heatLowerUse"),
        r.get("evaFanUse"), r.get("dhwUse"), r.get("dhwOperationSetting"), r.get("errorCode"),
        r.get("wifiRssi"), r.get("operationBusy"),
        # the original monitor's names: its compUse flag again, and 1 (a stored sample is a reply
        # or push the device sent, so it was connected)
        r.get("compUse"), 1,
    ]


def _message(r: dict[str, Any]) -> dict[str, Any]:
    """The status message as it came over MQTT (minus fields the store does not keep)."""
    status = {k: r[k] for k in KNOWN_KEYS if r.get(k) is not None}
    if r.get("extra_json"):
        status |= orjson.loads(r["extra_json"])
    msg: dict[str, Any] = {"protocolVersion": PROTOCOL_VERSION}
    if r.get("client_id") is not None:
        msg["clientID"] = r["client_id"]
    if r.get("session_id") is not None:
        msg["sessionID"] = r["session_id"]
    msg["response"] = {"deviceType": DEVICE_TYPE, "macAddress": r["device"], "status": status}
    return msg


def select_status(data_dir: Path, *, device: str | None = None, start: date | None = None,
                  end: date | None = None) -> pl.LazyFrame:
    """Stored status rows, filtered by device and UTC dates (inclusive), oldest first."""
    lf = scan_dataset(data_dir, "status")
    if device:
        lf = lf.filter(pl.col("device") == require_mac(device))
    if start:
        lf = lf.filter(pl.col("date") >= start)
    if end:
        lf = lf.filter(pl.col("date") <= end)
    return lf.sort("device", "received_at")


def export(config: NaviLinkConfig, fmt: Format | str, out: Path | None = None, *,
           device: str | None = None, start: date | None = None, end: date | None = None) -> Path:
    """Write the selected status samples to ``out`` (default ``exports/status_<...>.<fmt>``)."""
    if fmt not in ("csv", "parquet", "jsonl"):
        raise ValueError(f"unknown export format {fmt!r}; use csv, parquet or jsonl")
    if device is not None:
        device = require_mac(device)  # it also names the default output file
    if out is None:
        parts = ["status", device or "all", start.isoformat() if start else "", end.isoformat() if end else ""]
        out = Path("exports") / ("_".join(p for p in parts if p) + f".{fmt}")
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {out.parent}: {exc.strerror}") from None
    df = select_status(Path(config.data_dir), device=device, start=start, end=end).collect()
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        _write(df, fmt, tmp)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise storage_error(exc, out.parent, f"write {out.name}") from None
    return out


def _write(df: pl.DataFrame, fmt: str, tmp: Path) -> None:
    if fmt == "parquet":
        df.write_parquet(tmp, compression="zstd")
    elif fmt == "jsonl":
        with tmp.open("wb") as fh:
            for r in df.iter_rows(named=True):
                fh.write(orjson.dumps({"received_at": r["received_at"].isoformat(),
                                       "topic": None, "message": _message(r)}))
                fh.write(b"\n")
    else:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(CSV_COLUMNS)
            for r in df.iter_rows(named=True):
                w.writerow(_csv_row(r))
