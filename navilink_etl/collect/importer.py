"""Import captured traffic into the store: JSONL of MQTT messages, or nwp500-python ``monitor`` CSV.

JSONL, one object per line: ``{"received_at": "<ISO-8601 with offset>", "topic": "<optional>",
"message": <the MQTT message exactly as received, object or text>}``. Status messages go through
``status.parse_status``; energy replies become energy rows (fetched at ``received_at``).

nwp500-python's ``monitor`` appends ``DeviceStatus.model_dump()`` plus a naive local ``timestamp``
per poll. Wire values are rebuilt from its ``*_raw`` columns where present (newer versions),
otherwise by inverting that library's conversions (degF, booleans, enum names). Naive
timestamps are read in ``config.timezone``. Nothing already stored is written again.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import polars as pl

from ..config import NaviLinkConfig
from ..errors import PayloadError, StoreError
from ..protocol import mac_from_topic
from ..status import KNOWN_KEYS, parse_energy, parse_message, parse_status, status_row
from .store import Store

SOURCE_JSONL = "import-jsonl"
SOURCE_CSV = "import-nwp500-csv"
_BATCH = 50_000


@dataclass
class ImportResult:
    path: Path
    format: str
    lines: int = 0
    status_rows: int = 0  # valid status messages read
    imported: int = 0  # of which newly written
    energy_days: int = 0
    skipped: int = 0  # valid lines that are not status/energy (e.g. DID replies, our own requests)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    @property
    def duplicates(self) -> int:
        return self.status_rows - self.imported

    def __str__(self) -> str:
        head = (f"{self.path}: {self.lines} line(s) as {self.format}; {self.imported} status sample(s) "
                f"imported, {self.duplicates} already stored, {self.energy_days} energy day(s), "
                f"{self.skipped} skipped, {len(self.rejected)} rejected")
        shown = [f"  line {n}: {why}" for n, why in self.rejected[:20]]
        if len(self.rejected) > 20:
            shown.append(f"  ... and {len(self.rejected) - 20} more")
        return "\n".join([head, *shown])


def import_file(config: NaviLinkConfig, path: Path, *, device: str | None = None) -> ImportResult:
    """Import ``path`` (``.jsonl``/``.json`` lines or ``.csv``) into ``config.data_dir``.

    ``device`` names the MAC for a CSV without a ``mac_address`` column (else the store's only
    device is used). Rejected lines are reported with their line numbers.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip()
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}", path=str(path)) from None
    is_jsonl = head.startswith(b"{") or path.suffix.lower() in (".jsonl", ".ndjson", ".json")
    with Store(Path(config.data_dir)) as store:
        if is_jsonl:
            return _import_jsonl(store, path)
        return _import_csv(store, path, ZoneInfo(config.timezone), device)


# --- JSONL ----------------------------------------------------------------------------------------


def _import_jsonl(store: Store, path: Path) -> ImportResult:
    res = ImportResult(path=path, format="jsonl")
    rows: list[dict[str, Any]] = []
    energy: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            res.lines += 1
            try:
                kind, out = _jsonl_line(line)
            except ValueError as exc:  # PayloadError included: its message, without the raw text
                res.rejected.append((n, _reason(exc)))
                continue
            if kind == "status":
                rows.append(out[0])
            elif kind == "energy":
                energy.extend(out)
            else:
                res.skipped += 1
            if len(rows) >= _BATCH:
                _write_status(store, rows, res)
    _write_status(store, rows, res)
    if energy:
        res.energy_days = store.write_energy_frame(pl.DataFrame(energy))
    return res


def _jsonl_line(line: bytes) -> tuple[str, list[dict[str, Any]]]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict) or "message" not in obj or "received_at" not in obj:
        raise ValueError('expected {"received_at": ..., "message": ...}')
    at = _aware(obj["received_at"])
    topic = obj.get("topic")
    msg = obj["message"]
    if isinstance(msg, dict) and "request" in msg and "response" not in msg:
        return "other", []  # a request, not something the device sent
    raw = msg if isinstance(msg, dict | str) else orjson.dumps(msg)
    env = parse_message(raw)
    mac = env.mac or (mac_from_topic(topic) if isinstance(topic, str) else None)
    if env.kind == "status":
        st = parse_status(raw, received_at=at)
        if not mac:
            raise ValueError("status message without a MAC (no response.macAddress, no topic)")
        return "status", [status_row(st, received_at=at, source=SOURCE_JSONL, device=mac)]
    if env.kind == "energy":
        if not mac:
            raise ValueError("energy reply without a MAC")
        days = parse_energy(env.response)
        return "energy", [dict(device=mac, day=date(d.year, d.month, d.day), hp_wh=d.hp_wh, he_wh=d.he_wh,
                               hp_h=d.hp_h, he_h=d.he_h, fetched_at=at, source=SOURCE_JSONL)
                          for d in days if _valid_day(d.year, d.month, d.day)]
    return "other", []


def _aware(v: Any) -> datetime:
    if not isinstance(v, str):
        raise ValueError("received_at must be an ISO-8601 string")
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"received_at {v!r:.40} is not ISO-8601") from None
    if t.tzinfo is None:
        raise ValueError(f"received_at {v!r:.40} has no UTC offset; write it as ...Z or +00:00")
    return t.astimezone(UTC)


def _valid_day(y: int, m: int, d: int) -> bool:
    try:
        date(y, m, d)
    except ValueError:
        return False
    return True


def _write_status(store: Store, rows: list[dict[str, Any]], res: ImportResult) -> None:
    if not rows:
        return
    res.status_rows += len(rows)
    res.imported += store.write_status_frame(pl.DataFrame(rows, infer_schema_length=None))
    rows.clear()


# --- nwp500-python monitor CSV --------------------------------------------------------------------

_HALF_C = {
    "dhwTemperature", "dhwTemperatureSetting", "dhwTargetTemperatureSetting",
    "freezeProtectionTemperature", "dhwTemperature2", "hpUpperOnTempSetting",
    "hpUpperOffTempSetting", "hpLowerOnTempSetting", "hpLowerOffTempSetting",
    "heUpperOnTempSetting", "heUpperOffTempSetting", "heLowerOnTempSetting",
    "heLowerOffTempSetting", "heatMinOpTemperature", "recircTempSetting", "recircTemperature",
    "recircFaucetTemperature", "currentInletTemperature", "freezeProtectionTempMin",
    "freezeProtectionTempMax",
}  # fmt: skip
_DECI_C = {
    "tankUpperTemperature", "tankLowerTemperature", "dischargeTemperature", "suctionTemperature",
    "evaporatorTemperature", "ambientTemperature", "targetSuperHeat", "currentSuperHeat",
}  # fmt: skip
_DECI_K = {k for k in KNOWN_KEYS if "DiffTempSetting" in k or k == "heLowerOnTDiffempSetting"}
_FLAGS = {
    "didReload", "operationBusy", "freezeProtectionUse", "dhwUse", "dhwUseSustained",
    "dhwOperationBusy", "programReservationUse", "ecoUse", "compUse", "eevUse", "evaFanUse",
    "shutOffValveUse", "conOvrSensorUse", "wtrOvrSensorUse", "antiLegionellaUse",
    "antiLegionellaOperationBusy", "errorBuzzerUse", "heatUpperUse", "heatLowerUse", "scaldUse",
    "airFilterAlarmUse", "recircOperationBusy", "recircReservationUse", "touOverrideStatus",
}  # fmt: skip
_ENUMS: dict[str, dict[str, int]] = {  # nwp500-python enum member names
    "operationMode": {"STANDBY": 0, "HEAT_PUMP_MODE": 32, "HYBRID_EFFICIENCY_MODE": 64,
                      "HYBRID_BOOST_MODE": 96},
    "dhwOperationSetting": {"HEAT_PUMP": 1, "ELECTRIC": 2, "ENERGY_SAVER": 3, "HIGH_DEMAND": 4,
                            "VACATION": 5, "POWER_OFF": 6},
    "currentHeatUse": {"UNKNOWN": 0, "HEATPUMP": 1, "HEATELEMENT": 2, "HEATPUMP_HEATELEMENT": 3},
    "temperatureType": {"CELSIUS": 1, "FAHRENHEIT": 2},
    "tempFormulaType": {"ASYMMETRIC": 0, "STANDARD": 1},
    "drEventStatus": {"UNKNOWN": 0, "RUN_NORMAL": 1, "SHED": 2, "LOADUP": 3, "LOADUP_ADV": 4, "CPE": 5},
    "recircOperationMode": {"UNKNOWN": 0, "ALWAYS": 1, "BUTTON": 2, "SCHEDULE": 3, "TEMPERATURE": 4},
}
_TEN_WH = {"totalEnergyCapacity", "availableEnergyCapacity"}  # nwp500 multiplies the raw value by 10
_GPM_DECI_LPM = {"currentDhwFlowRate", "recircDhwFlowRate"}
_GAL_TO_L = 1 / 0.264172


def _snake(key: str) -> str:
    if key == "heLowerOnTDiffempSetting":
        return "he_lower_on_diff_temp_setting"  # nwp500-python's name for the wire typo
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


_SNAKE = {k: _snake(k) for k in KNOWN_KEYS}


def _num(text: str) -> float:
    t = text.strip()
    if "." in t and t.split(".", 1)[0].isidentifier():  # "Class.NAME" enum rendering
        raise ValueError
    return float(t.split()[0]) if t else float("nan")


def _enum(key: str, text: str) -> int:
    t = text.strip()
    name = t.rsplit(".", 1)[-1].upper()
    names = _ENUMS.get(key, {})
    if name in names:
        return names[name]
    if key == "errorCode":
        if name == "NO_ERROR":
            return 0
        m = re.match(r"E(\d+)", name)
        if m:
            return int(m.group(1))
    return round(float(t))


def _wire_value(key: str, text: str, celsius: bool) -> int:
    """One CSV cell of nwp500-python's converted dump -> the raw wire integer."""
    t = text.strip()
    if key in _FLAGS:
        if t.lower() in ("true", "1.0"):
            return 2
        if t.lower() in ("false", "0.0"):
            return 1
        return int(t)  # already raw (1/2/0)
    if key in _ENUMS or key == "errorCode":
        return _enum(key, t)
    v = _num(t)
    c = v if celsius else (v - 32.0) * 5.0 / 9.0
    if key in _HALF_C:
        return round(c * 2.0)
    if key in _DECI_C:
        return round(c * 10.0)
    if key in _DECI_K:
        return round((v if celsius else v * 5.0 / 9.0) * 10.0)
    if key == "outsideTemperature":
        return round(c)
    if key in _TEN_WH:
        return round(v / 10.0)
    if key in _GPM_DECI_LPM:
        return round((v if celsius else v * _GAL_TO_L) * 10.0)
    if key == "cumulatedDhwFlowRate":
        return round(v if celsius else v * _GAL_TO_L)
    if key == "touStatus" and t.lower() in ("true", "false"):
        return 1 if t.lower() == "true" else 0
    return round(v)


def _csv_status(rec: dict[str, str]) -> dict[str, int]:
    celsius = rec.get("temperature_type", "").strip().rsplit(".", 1)[-1].upper() in ("CELSIUS", "1")
    status: dict[str, int] = {}
    for key, snake in _SNAKE.items():
        raw = rec.get(f"{snake}_raw")
        if raw is not None and raw.strip() != "":
            status[key] = round(float(raw))
            continue
        text = rec.get(snake)
        if text is None or text.strip() == "" or text.strip().lower() == "none":
            continue
        try:
            status[key] = _wire_value(key, text, celsius)
        except (ValueError, OverflowError):
            raise ValueError(f"column {snake}: cannot read {text!r:.30}") from None
    return status


def _csv_time(text: str | None, tz: ZoneInfo) -> datetime:
    if not text:
        raise ValueError("no timestamp")
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {text!r:.40} is not ISO-8601") from None
    if t.tzinfo is None:  # the monitor writes local wall time without an offset
        t = t.replace(tzinfo=tz)
    return t.astimezone(UTC)


def _import_csv(store: Store, path: Path, tz: ZoneInfo, device: str | None) -> ImportResult:
    res = ImportResult(path=path, format="nwp500-csv")
    rows: list[dict[str, Any]] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if "timestamp" not in header:
            raise StoreError(f"{path} is neither JSONL nor an nwp500-python monitor CSV (no "
                             "'timestamp' column)", path=str(path))
        fallback = device.lower() if device else _only_device(store)
        for rec in reader:
            n = reader.line_num
            res.lines += 1
            try:
                mac = (rec.get("mac_address") or "").strip().lower().replace(":", "") or fallback
                if not mac:
                    raise ValueError("no mac_address column and no device given; pass device=<mac>")
                at = _csv_time(rec.get("timestamp"), tz)
                status = _csv_status(rec)
                message = {"response": {"macAddress": mac, "status": status}}
                st = parse_status(message, received_at=at)
            except ValueError as exc:  # PayloadError included: its message, without the raw text
                res.rejected.append((n, _reason(exc)))
                continue
            rows.append(status_row(st, received_at=at, source=SOURCE_CSV, device=mac))
            if len(rows) >= _BATCH:
                _write_status(store, rows, res)
    _write_status(store, rows, res)
    return res


def _only_device(store: Store) -> str | None:
    devs = [p.name.split("=", 1)[1] for p in (store.data_dir / "status").glob("device=*")]
    return devs[0] if len(devs) == 1 else None


def _reason(exc: ValueError) -> str:
    return exc.message if isinstance(exc, PayloadError) else str(exc)
