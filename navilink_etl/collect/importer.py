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
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import orjson
import polars as pl

from ..config import NaviLinkConfig
from ..errors import ConfigurationError, NaviLinkError, StoreError
from ..identity import is_mac, normalize_mac, require_mac
from ..protocol import mac_from_topic
from ..status import KNOWN_KEYS, parse_energy, parse_message, parse_status, status_row
from .store import ENERGY, QUARANTINE, STATUS, Store, row_problem

log = logging.getLogger(__name__)

SOURCE_JSONL = "import-jsonl"
SOURCE_CSV = "import-nwp500-csv"
_BATCH = 10_000  # rows held before a write (~10 KB each with their raw line)
MAX_LINE_BYTES = 1 << 20  # a status message is ~3 KB; a longer line is rejected, never read whole
EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)  # before any NaviLink heater
MAX_AHEAD = timedelta(days=1)  # received_at may lead the machine clock by this much, no more
_RAW_KEEP = 4096  # bytes of an over-long line kept in quarantine
_KEEP_REJECTED = 10_000  # (line, reason) pairs kept for the summary; all are counted and quarantined


@dataclass
class ImportResult:
    path: Path
    format: str
    lines: int = 0
    status_rows: int = 0  # valid status messages read
    imported: int = 0  # of which newly written
    energy_days: int = 0
    skipped: int = 0  # valid lines that are not status/energy (e.g. DID replies, our own requests)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason), the first 10,000
    rejected_total: int = 0
    quarantine_dir: Path | None = None  # where the rejected lines are kept, with their reasons

    @property
    def duplicates(self) -> int:
        return self.status_rows - self.imported

    @property
    def nothing_read(self) -> bool:
        """No line of the file could be read (the CLI then exits non-zero)."""
        return self.status_rows + self.energy_days + self.skipped == 0

    def __str__(self) -> str:
        head = (f"{self.path}: {self.lines} line(s) as {self.format}; {self.imported} status sample(s) "
                f"imported, {self.duplicates} already stored, {self.energy_days} energy day(s), "
                f"{self.skipped} skipped, {self.rejected_total} rejected")
        shown = [f"  line {n}: {why}" for n, why in self.rejected[:20]]
        if self.rejected_total > 20:
            shown.append(f"  ... and {self.rejected_total - 20} more")
        summary = f"{self.imported} imported, {self.rejected_total} rejected"
        if self.rejected_total:
            summary += f" (see {self.quarantine_dir})"
        return "\n".join([head, *shown, summary])


def import_file(config: NaviLinkConfig, path: Path, *, device: str | None = None,
                now: datetime | None = None) -> ImportResult:
    """Import ``path`` (``.jsonl``/``.json`` lines or ``.csv``) into ``config.data_dir``.

    ``device`` names the MAC for a CSV without a ``mac_address`` column (else the store's only
    device is used). A line that cannot be imported, for whatever reason, is rejected: listed with
    its line number and kept in ``quarantine/`` with the reason and its raw text; the other lines
    are imported once. ``received_at`` must lie between 2015 and a day after ``now`` (the clock).
    Raises ``StoreError`` only when the file or the data directory cannot be used at all.
    """
    path = Path(path)
    now = now or datetime.now(UTC)
    fallback = None
    if device is not None:
        fallback = normalize_mac(device)
        if fallback is None:
            raise ConfigurationError(f"device {device!r:.40} is not a MAC (12 hex digits)")
    try:
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip()
        fh = path.open("rb")
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}", path=str(path)) from None
    is_jsonl = head.startswith(b"{") or path.suffix.lower() in (".jsonl", ".ndjson", ".json")
    with fh, Store(config.location, spool_dir=config.spool_path) as store:
        sink = _Sink(store, path, SOURCE_JSONL if is_jsonl else SOURCE_CSV, now)
        try:
            if is_jsonl:
                _import_jsonl(fh, sink, now)
            else:
                _import_csv(fh, sink, ZoneInfo(config.timezone), fallback, now)
        except OSError as exc:
            raise StoreError(f"reading {path} failed after line {sink.res.lines}: {exc.strerror}; lines "
                             "before it are imported (importing again never duplicates them)") from None
        finally:
            sink.finish()
        return sink.res


class _Sink:
    """Accepted rows (written in batches, each with its line number) and rejections (quarantined)."""

    def __init__(self, store: Store, path: Path, source: str, now: datetime) -> None:
        self.store = store
        self.source = source
        self.now = now
        fmt = "jsonl" if source == SOURCE_JSONL else "nwp500-csv"
        self.res = ImportResult(path=path, format=fmt)
        self.rows: list[tuple[int, bytes, dict[str, Any]]] = []
        self.energy: list[tuple[int, bytes, list[dict[str, Any]]]] = []
        self.energy_rows = 0
        self.quarantined: list[dict[str, Any]] = []

    def status(self, n: int, raw: bytes, row: dict[str, Any]) -> None:
        self.rows.append((n, raw, row))
        if len(self.rows) >= _BATCH:
            self.write_status()

    def energy_reply(self, n: int, raw: bytes, rows: list[dict[str, Any]]) -> None:
        self.energy.append((n, raw, rows))
        self.energy_rows += len(rows)
        if self.energy_rows >= _BATCH:
            self.write_energy()

    def reject(self, n: int, raw: bytes | str, reason: str) -> None:
        reason = reason if len(reason) <= 300 else reason[:297] + "..."
        self.res.rejected_total += 1
        if len(self.res.rejected) < _KEEP_REJECTED:
            self.res.rejected.append((n, reason))
        self.quarantined.append(dict(reason=f"{self.res.path.name} line {n}: {reason}", raw=raw,
                                     source=self.source, received_at=self.now))
        if len(self.quarantined) >= 1000:
            self._quarantine()

    def _quarantine(self) -> None:
        if self.quarantined:
            self.store.quarantine_many(self.quarantined)
            self.quarantined.clear()
            self.res.quarantine_dir = (Path(self.store.data_dir) / QUARANTINE
                                       / f"date={self.now.astimezone(UTC).date().isoformat()}")

    def write_status(self) -> None:
        """Write the batch; should the frame fail anyway, write row by row and reject the failures."""
        if not self.rows:
            return
        batch, self.rows = self.rows, []
        self.res.status_rows += len(batch)
        try:
            self.res.imported += self.store.write_status_frame(
                pl.DataFrame([r for _, _, r in batch], infer_schema_length=None))
            return
        except StoreError:
            raise  # the disk, not the rows
        except (Exception, pl.exceptions.PanicException) as exc:  # isolate the rows polars could not take
            log.warning("a batch of %d imported rows failed (%s); writing them one by one", len(batch), exc)
        for n, raw, row in batch:
            try:
                self.res.imported += self.store.write_status_frame(pl.DataFrame([row]))
            except StoreError:
                raise
            except (Exception, pl.exceptions.PanicException) as exc:  # every failure of a line is a rejection
                self.res.status_rows -= 1
                self.reject(n, raw, _reason(exc))

    def write_energy(self) -> None:
        """Upsert the energy replies held; should the frame fail anyway, reply by reply."""
        replies, self.energy, self.energy_rows = self.energy, [], 0
        if not replies:
            return
        try:
            self._upsert_energy([row for _, _, rows in replies for row in rows])
            return
        except StoreError:
            raise
        except (Exception, pl.exceptions.PanicException) as exc:  # isolate the replies polars could not take
            log.warning("a batch of %d energy replies failed (%s); writing them one by one", len(replies), exc)
        for n, raw, rows in replies:
            try:
                self._upsert_energy(rows)
            except StoreError:
                raise
            except (Exception, pl.exceptions.PanicException) as exc:  # every failure of a line is a rejection
                self.reject(n, raw, _reason(exc))

    def _upsert_energy(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.res.energy_days += self.store.write_energy_frame(pl.DataFrame(rows))

    def finish(self) -> None:
        self.write_status()
        self.write_energy()
        self._quarantine()


def _lines(fh: IO[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes, int]]:
    """(line number, line, 0) per line; an over-long line comes as (n, its first bytes, its
    length) and is skipped without being held in memory."""
    n = 0
    while line := fh.readline(limit + 1):
        n += 1
        if len(line) <= limit or line.endswith(b"\n"):
            yield n, line, 0
            continue
        head, size = line[:_RAW_KEEP], len(line)
        while line and not line.endswith(b"\n"):
            line = fh.readline(1 << 16)
            size += len(line)
        yield n, head, size


def _too_long(size: int) -> str:
    return f"line of {size} bytes is longer than the {MAX_LINE_BYTES} allowed (first {_RAW_KEEP} kept)"


# --- JSONL ----------------------------------------------------------------------------------------


def _import_jsonl(fh: IO[bytes], sink: _Sink, now: datetime) -> None:
    res = sink.res
    for n, line, size in _lines(fh):
        if not line.strip():
            continue
        res.lines += 1
        if size:
            sink.reject(n, line, _too_long(size))
            continue
        try:
            kind, out = _jsonl_line(line, now)
        except Exception as exc:  # any failure of one line is that line's rejection
            sink.reject(n, line, _reason(exc))
            continue
        if kind == "status":
            sink.status(n, line, out[0])
        elif kind == "energy":
            sink.energy_reply(n, line, out)
        else:
            res.skipped += 1


def _jsonl_line(line: bytes, now: datetime) -> tuple[str, list[dict[str, Any]]]:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict) or "message" not in obj or "received_at" not in obj:
        raise ValueError('expected {"received_at": ..., "message": ...}')
    at = received_time(obj["received_at"], now)
    topic = obj.get("topic")
    if topic is not None and not isinstance(topic, str):
        raise ValueError("topic is not text")
    msg = obj["message"]
    if isinstance(msg, dict) and "request" in msg and "response" not in msg:
        return "other", []  # a request, not something the device sent
    raw = msg if isinstance(msg, dict | str) else orjson.dumps(msg)
    env = parse_message(raw)
    if env.kind not in ("status", "energy"):
        return "other", []
    mac = _device(env.mac, topic)
    if env.kind == "status":
        st = parse_status(raw, received_at=at)
        row = status_row(st, received_at=at, source=SOURCE_JSONL, device=mac)
        _check(STATUS, row)
        return "status", [row]
    rows = []
    for d in parse_energy(env.response):
        if not EARLIEST.year <= d.year <= now.year + 1:
            raise ValueError(f"energy usage year {str(d.year)[:20]} is outside {EARLIEST.year}..{now.year + 1}")
        try:
            day = date(d.year, d.month, d.day)
        except ValueError:
            continue  # the list runs to day 31 in every month
        if day > at.date() + timedelta(days=1):
            continue  # not yet happened when the reply came (the device's local day may lead UTC)
        row = dict(device=mac, day=day, hp_wh=d.hp_wh, he_wh=d.he_wh, hp_h=d.hp_h, he_h=d.he_h,
                   fetched_at=at, source=SOURCE_JSONL)
        _check(ENERGY, row)
        rows.append(row)
    return "energy", rows


def _device(body_mac: str | None, topic: str | None) -> str:
    """The message's MAC: the body's and the topic's must both be MACs and agree if both are given."""
    body = require_mac(body_mac, what="response.macAddress") if body_mac is not None else None
    topic_mac = mac_from_topic(topic) if topic else None
    from_topic = require_mac(topic_mac, what="the topic's MAC") if topic_mac is not None else None
    if body and from_topic and body != from_topic:
        raise ValueError(f"response.macAddress {body} differs from the topic's MAC {from_topic}")
    mac = body or from_topic
    if mac is None:
        raise ValueError("message without a MAC (no response.macAddress, no topic)")
    return mac


def _check(dataset: str, row: dict[str, Any]) -> None:
    if why := row_problem(dataset, row):
        raise ValueError(f"{dataset} value refused: {why}")


def received_time(v: Any, now: datetime) -> datetime:
    """An ISO-8601 time with an offset, in UTC, between 2015-01-01 and a day after ``now``."""
    if not isinstance(v, str) or len(v) > 64:
        raise ValueError("received_at must be an ISO-8601 string")
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"received_at {v!r:.40} is not ISO-8601") from None
    if t.tzinfo is None:
        raise ValueError(f"received_at {v!r:.40} has no UTC offset; write it as ...Z or +00:00")
    return _in_window(t, v, "received_at", now)


def _in_window(t: datetime, text: str, what: str, now: datetime) -> datetime:
    try:
        t = t.astimezone(UTC)
    except OverflowError:
        t = EARLIEST - timedelta(days=1) if t.year < 2000 else datetime.max.replace(tzinfo=UTC)
    if not EARLIEST <= t <= now + MAX_AHEAD:
        raise ValueError(f"{what} {text!r:.40} is outside {EARLIEST:%Y-%m-%d} .. "
                         f"{now + MAX_AHEAD:%Y-%m-%dT%H:%M}Z (the machine clock plus a day)")
    return t


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


def _raw_int(column: str, text: str) -> int:
    try:
        return round(float(text))
    except (ValueError, OverflowError):
        raise ValueError(f"column {column}: cannot read {text!r:.30} as a wire integer") from None


def _csv_status(rec: dict[str, str]) -> dict[str, int]:
    celsius = rec.get("temperature_type", "").strip().rsplit(".", 1)[-1].upper() in ("CELSIUS", "1")
    status: dict[str, int] = {}
    for key, snake in _SNAKE.items():
        raw = rec.get(f"{snake}_raw")
        if raw is not None and raw.strip() != "":
            status[key] = _raw_int(f"{snake}_raw", raw)
            continue
        text = rec.get(snake)
        if text is None or text.strip() == "" or text.strip().lower() == "none":
            continue
        try:
            status[key] = _wire_value(key, text, celsius)
        except (ValueError, OverflowError):
            raise ValueError(f"column {snake}: cannot read {text!r:.30}") from None
    return status


def _csv_time(text: str | None, tz: ZoneInfo, now: datetime) -> datetime:
    if not text:
        raise ValueError("no timestamp")
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {text!r:.40} is not ISO-8601") from None
    if t.tzinfo is None:  # the monitor writes local wall time without an offset
        t = t.replace(tzinfo=tz)
    return _in_window(t, text, "timestamp", now)


class _TextLines:
    """The file's lines as text for ``csv.reader``: a line that is not UTF-8 or too long is
    rejected here (and not passed on); ``take()`` returns the raw text of the last record."""

    def __init__(self, fh: IO[bytes], sink: _Sink) -> None:
        self.fh, self.sink = fh, sink
        self.n = 0
        self.parts: list[str] = []

    def __iter__(self) -> Iterator[str]:
        for n, line, size in _lines(self.fh):
            self.n = n
            if size:
                self.sink.res.lines += 1
                self.sink.reject(n, line, _too_long(size))
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.sink.res.lines += 1
                self.sink.reject(n, line, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
                continue
            if n == 1:
                text = text.removeprefix("\ufeff")
            self.parts.append(text)
            yield text

    def take(self) -> str:
        text, self.parts = "".join(self.parts), []
        return text


def _import_csv(fh: IO[bytes], sink: _Sink, tz: ZoneInfo, device: str | None, now: datetime) -> None:
    res = sink.res
    lines = _TextLines(fh, sink)
    reader = csv.reader(lines)
    header = next(reader, None) or []
    lines.take()
    if "timestamp" not in header:
        raise StoreError(f"{res.path} is neither JSONL nor an nwp500-python monitor CSV (no "
                         "'timestamp' column)", path=str(res.path))
    fallback = device or _only_device(sink.store)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over the csv module's limit: reject, read on
            res.lines += 1
            sink.reject(lines.n, lines.take(), f"CSV: {exc}")
            continue
        n, raw = lines.n, lines.take()
        if not any(c.strip() for c in cells):
            continue
        res.lines += 1
        try:
            if len(cells) != len(header):
                raise ValueError(f"{len(cells)} cells where the header has {len(header)}")
            rec = dict(zip(header, cells, strict=True))
            text_mac = (rec.get("mac_address") or "").strip()
            mac = normalize_mac(text_mac) if text_mac else fallback
            if text_mac and mac is None:
                raise ValueError(f"mac_address {text_mac!r:.40} is not a MAC (12 hex digits)")
            if not mac:
                raise ValueError("no mac_address column and no device given; pass device=<mac>")
            at = _csv_time(rec.get("timestamp"), tz, now)
            message = {"response": {"macAddress": mac, "status": _csv_status(rec)}}
            row = status_row(parse_status(message, received_at=at), received_at=at,
                             source=SOURCE_CSV, device=mac)
            _check(STATUS, row)
        except Exception as exc:  # any failure of one line is that line's rejection
            sink.reject(n, raw, _reason(exc))
            continue
        sink.status(n, raw.encode(), row)


def _only_device(store: Store) -> str | None:
    devs = [d for p in (Path(store.data_dir) / "status").glob("device=*") if is_mac(d := p.name.split("=", 1)[1])]
    return devs[0] if len(devs) == 1 else None


def _reason(exc: BaseException) -> str:
    """What was wrong with a line, without its raw text (kept in quarantine instead)."""
    if isinstance(exc, NaviLinkError):
        return exc.message
    if isinstance(exc, ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
