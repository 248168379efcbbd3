"""The durable store: spool (SQLite WAL) -> hive-partitioned Parquet, atomic and idempotent.

Layout under ``data_dir`` (readable by DuckDB/polars without this package)::

    status/device=<mac>/date=YYYY-MM-DD/part-*.parquet   one row per status message
    energy/device=<mac>/part-0.parquet                    the device's daily history (upserted)
    events/date=YYYY-MM-DD/part-*.parquet                 collector events
    quarantine/date=YYYY-MM-DD/part-*.parquet             messages that failed parsing
    spool/spool.sqlite                                    the crash-safe append log

Partition columns are ALSO stored inside every file with explicit types (``device`` String,
``date`` Date) and always equal the directory's values. Readers therefore agree: DuckDB and polars
take the same value from the path or the file, and polars never infers an all-digit MAC such as
``001122334455`` as an integer (it would, were the column only in the path).

Guarantees: ``append_*``/``quarantine`` return only after the row is fsync'd in the spool. Every
Parquet file appears by ``os.replace`` of an fsync'd temporary (names end in ``.tmp``, so
``*.parquet`` globs never see them) followed by an fsync of the directory. A flush is recorded in
the spool before its files are written and its rows leave the spool only after; a flush cut short
by a crash is redone on restart with the same file names, so it overwrites rather than duplicates.
Rows are identified by (device, received_at, content_hash) for status, (device, day) for energy
(latest ``fetched_at`` wins), a content hash for events and quarantine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
import polars as pl

from ..errors import StoreError
from ..status import KNOWN_KEYS, content_hash, status_schema
from .spool import FlushBatch, Spool, SpoolItem

log = logging.getLogger(__name__)

STATUS, ENERGY, EVENTS, QUARANTINE = "status", "energy", "events", "quarantine"
DATASETS = (STATUS, ENERGY, EVENTS, QUARANTINE)
SEEN_RETENTION = timedelta(hours=26)  # live keys remembered in the spool; older rows are checked on disk
_FLUSH_BATCH_ROWS = 200_000
_COMPRESSION: Literal["zstd"] = "zstd"


def status_file_schema() -> dict[str, Any]:
    """Columns of a status Parquet file: ``device``, ``date`` (UTC date of received_at), then the rest."""
    s = status_schema()
    out: dict[str, Any] = {"device": s.pop("device"), "date": pl.Date}
    out.update(s)
    return out


def energy_schema() -> dict[str, Any]:
    return {
        "device": pl.String, "day": pl.Date, "hp_wh": pl.Int64, "he_wh": pl.Int64,
        "hp_h": pl.Int64, "he_h": pl.Int64, "fetched_at": pl.Datetime("us", "UTC"),
        "source": pl.String,
    }  # fmt: skip


def events_schema() -> dict[str, Any]:
    return {
        "at": pl.Datetime("us", "UTC"), "date": pl.Date, "device": pl.String, "kind": pl.String,
        "severity": pl.String, "detail": pl.String, "duration_s": pl.Float64,
    }  # fmt: skip


def quarantine_schema() -> dict[str, Any]:
    return {
        "received_at": pl.Datetime("us", "UTC"), "date": pl.Date, "device": pl.String,
        "source": pl.String, "topic": pl.String, "reason": pl.String, "raw": pl.String,
    }  # fmt: skip


_SCHEMAS = {STATUS: status_file_schema, ENERGY: energy_schema, EVENTS: events_schema,
            QUARANTINE: quarantine_schema}
_TIME_COL = {STATUS: "received_at", ENERGY: "fetched_at", EVENTS: "at", QUARANTINE: "received_at"}


def schema_of(dataset: str) -> dict[str, Any]:
    return _SCHEMAS[dataset]()


# --- small helpers ------------------------------------------------------------------------------


def _us(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    d = t.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def _hash(*parts: Any) -> str:
    return hashlib.blake2b(orjson.dumps(parts, default=str), digest_size=8).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> int:
    """Run ``write(tmp)``, fsync, then rename over ``path``: readers see the old file or the whole
    new one, never a torn one. Returns the new file's size in bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return path.stat().st_size


def atomic_write_parquet(df: pl.DataFrame, path: Path) -> int:
    """Write ``df`` to ``path`` so that ``path`` is either absent/old or complete; returns bytes."""
    return _atomic_write(path, lambda tmp: df.write_parquet(tmp, compression=_COMPRESSION, statistics=True))


def atomic_write_bytes(data: bytes, path: Path) -> int:
    """Write a small file so that ``path`` is either absent/old or complete."""
    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return _atomic_write(path, write)


def _frame(rows: list[dict], dataset: str) -> pl.DataFrame:
    """Spool payloads (times as epoch microseconds) -> a frame with the dataset's file schema."""
    schema = schema_of(dataset)
    time_cols = [c for c, t in schema.items() if isinstance(t, pl.Datetime)]
    date_cols = [c for c, t in schema.items() if t == pl.Date]
    raw_schema = {c: (pl.Int64 if c in time_cols else pl.Int32 if c in date_cols else t)
                  for c, t in schema.items()}
    df = pl.from_dicts(rows, schema=raw_schema)
    return df.with_columns(
        *[pl.from_epoch(pl.col(c), "us").dt.replace_time_zone("UTC").alias(c) for c in time_cols],
        *[pl.col(c).cast(pl.Date) for c in date_cols],
    )


@dataclass
class FlushResult:
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DATASETS, 0))
    files: int = 0
    bytes: int = 0

    def add(self, other: FlushResult) -> None:
        for k, v in other.rows.items():
            self.rows[k] = self.rows.get(k, 0) + v
        self.files += other.files
        self.bytes += other.bytes


@dataclass
class StoreStats:
    files_written: int = 0
    bytes_written: int = 0
    rows_written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DATASETS, 0))
    flushes: int = 0
    compactions: int = 0
    duplicates_skipped: int = 0


class Store:
    """Durable store of one data directory. One writing process at a time (a lock file enforces it).

    Opening replays what a previous process left: a flush cut short is redone, a half-applied
    compaction is completed, stray temporaries are removed, and (``replay=True``) pending spool
    rows are flushed to Parquet.
    """

    def __init__(self, data_dir: Path, *, replay: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.stats = StoreStats()
        self._flush_lock = threading.RLock()
        try:
            (self.data_dir / "spool").mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.data_dir / "spool" / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create the data directory {self.data_dir}: {exc.strerror}; "
                             "check the path and its permissions (NAVILINK_DATA_DIR)") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise StoreError(f"the data directory {self.data_dir} is in use by another collector, "
                             "simulate or import; stop it or use another NAVILINK_DATA_DIR") from None
        os.ftruncate(self._lock_fd, 0)
        os.write(self._lock_fd, f"{os.getpid()}\n".encode())
        self.spool = Spool(self.data_dir / "spool" / "spool.sqlite")
        self._closed = False
        self._recover()
        if replay:
            self.flush()

    # --- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, *, flush: bool = True) -> None:
        if self._closed:
            return
        try:
            if flush:
                self.flush()
        finally:
            self._closed = True
            self.spool.close()
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)

    def _recover(self) -> None:
        for cid, target, sources in self.spool.open_compactions():
            if (self.data_dir / target).exists():  # the merged file is in place: finish the job
                for s in sources:
                    with contextlib.suppress(FileNotFoundError):
                        (self.data_dir / s).unlink()
                log.warning("completed a compaction interrupted by a crash: %s", target)
            self.spool.end_compaction(cid)
        for ds in DATASETS:
            root = self.data_dir / ds
            if root.exists():
                for tmp in root.rglob(".*.tmp"):
                    with contextlib.suppress(OSError):
                        tmp.unlink()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    # --- durable appends (spool) ------------------------------------------------------------
    def append_status(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Spool status rows (``status.status_row`` dicts); returns how many the spool had not seen.

        Rows already in Parquet but no longer (or never) in the spool's key memory are dropped
        at flush time instead, so nothing is stored twice either way.
        """
        self._check_open()
        items = []
        for r in rows:
            dev, at = r.get("device"), r.get("received_at")
            if not dev or not isinstance(at, datetime):
                raise ValueError("a status row needs 'device' and a timezone-aware 'received_at'")
            at_us = _us(at)
            h = r.get("content_hash") or _status_hash_from_row(r)
            payload = {k: v for k, v in r.items() if v is not None and k != "received_at"}
            payload.update(device=str(dev).lower(), received_at=at_us, content_hash=h,
                           date=_epoch_day(at))
            items.append(SpoolItem(STATUS, f"s|{payload['device']}|{at_us}|{h}", at_us, payload))
        n = self.spool.append(items)
        self.stats.duplicates_skipped += len(items) - n
        return n

    def append_energy(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Spool daily energy rows: device, day (date), hp_wh, he_wh, hp_h, he_h, fetched_at, source."""
        self._check_open()
        items = []
        for r in rows:
            day, fetched = r["day"], r["fetched_at"]
            if not isinstance(day, date) or not isinstance(fetched, datetime):
                raise ValueError("an energy row needs 'day' (date) and 'fetched_at' (aware datetime)")
            f_us = _us(fetched)
            payload = {"device": str(r["device"]).lower(), "day": (day - date(1970, 1, 1)).days,
                       "fetched_at": f_us, "source": r.get("source")}
            for k in ("hp_wh", "he_wh", "hp_h", "he_h"):
                payload[k] = int(r[k])
            key = f"e|{payload['device']}|{payload['day']}|{f_us}|" + _hash(payload)
            items.append(SpoolItem(ENERGY, key, f_us, payload))
        return self.spool.append(items)

    def append_event(self, kind: str, *, detail: str = "", device: str | None = None,
                     severity: str = "info", duration_s: float | None = None,
                     at: datetime | None = None) -> bool:
        """Spool one collector event (what, when, which device, how long). True if new."""
        self._check_open()
        at = at or datetime.now(UTC)
        at_us = _us(at)
        payload = {"at": at_us, "date": _epoch_day(at), "device": device, "kind": kind,
                   "severity": severity, "detail": detail, "duration_s": duration_s}
        key = "v|" + _hash(payload)
        return self.spool.append([SpoolItem(EVENTS, key, at_us, payload)]) == 1

    def quarantine(self, *, reason: str, raw: str | bytes, source: str, topic: str | None = None,
                   device: str | None = None, received_at: datetime | None = None) -> bool:
        """Spool a message that failed parsing, with the reason and its raw text. True if new."""
        self._check_open()
        received_at = received_at or datetime.now(UTC)
        at_us = _us(received_at)
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
        payload = {"received_at": at_us, "date": _epoch_day(received_at), "device": device,
                   "source": source, "topic": topic, "reason": reason, "raw": text}
        key = "q|" + _hash(payload)
        return self.spool.append([SpoolItem(QUARANTINE, key, at_us, payload)]) == 1

    def pending(self) -> int:
        """Rows in the spool not yet in Parquet."""
        return self.spool.pending_count()

    # --- flushing ---------------------------------------------------------------------------
    def flush(self) -> FlushResult:
        """Drain the spool into Parquet (atomic files); rows leave the spool only once written."""
        self._check_open()
        total = FlushResult()
        with self._flush_lock:
            while True:
                batch = self.spool.incomplete_flush() or self.spool.begin_flush(_FLUSH_BATCH_ROWS)
                if batch is None:
                    break
                res = self._write_batch(batch)
                horizon = self.spool.seen_horizon_us(int(SEEN_RETENTION.total_seconds() * 1e6))
                self.spool.finish_flush(batch, prune_seen_before_us=horizon)
                total.add(res)
                self.stats.flushes += 1
        self._account(total)
        return total

    def _account(self, res: FlushResult) -> None:
        self.stats.files_written += res.files
        self.stats.bytes_written += res.bytes
        for k, v in res.rows.items():
            self.stats.rows_written[k] = self.stats.rows_written.get(k, 0) + v

    def _part_name(self, batch: FlushBatch) -> str:
        return f"part-{self.spool.spool_id}-{batch.seq:010d}.parquet"

    def _write_batch(self, batch: FlushBatch) -> FlushResult:
        res = FlushResult()
        name = self._part_name(batch)
        if rows := batch.rows.get(STATUS):
            df = _frame(rows, STATUS)
            horizon = self.spool.seen_horizon_us(int(SEEN_RETENTION.total_seconds() * 1e6))
            forgotten = (None if horizon is None else
                         (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=horizon)).date())
            bulk = self.spool.bulk_partitions()
            for (dev, day), part in df.group_by(["device", "date"]):
                pdir = self._status_dir(str(dev), day)
                if (forgotten is not None and day <= forgotten) or _pkey(str(dev), day) in bulk:
                    # keys the spool may have forgotten, or rows the bulk path wrote: ask the disk
                    part = self._anti_join_disk(part, pdir, exclude=name)
                if part.height:
                    res.bytes += atomic_write_parquet(part.sort("received_at"), pdir / name)
                    res.files += 1
                    res.rows[STATUS] += part.height
        for ds in (EVENTS, QUARANTINE):
            if rows := batch.rows.get(ds):
                df = _frame(rows, ds)
                for (day,), part in df.group_by(["date"]):
                    pdir = self.data_dir / ds / f"date={day.isoformat()}"
                    res.bytes += atomic_write_parquet(part.sort(_TIME_COL[ds]), pdir / name)
                    res.files += 1
                    res.rows[ds] += part.height
        if rows := batch.rows.get(ENERGY):
            r = self._upsert_energy(_frame(rows, ENERGY))
            res.add(r)
        return res

    def _status_dir(self, device: str, day: date) -> Path:
        return self.data_dir / STATUS / f"device={device}" / f"date={day.isoformat()}"

    @staticmethod
    def _files(pdir: Path) -> list[Path]:
        return sorted(pdir.glob("*.parquet")) if pdir.is_dir() else []

    def _anti_join_disk(self, part: pl.DataFrame, pdir: Path, *, exclude: str | None = None) -> pl.DataFrame:
        files = [f for f in self._files(pdir) if f.name != exclude]
        if not files:
            return part
        have = pl.scan_parquet(files).select("received_at", "content_hash").collect()
        before = part.height
        part = part.join(have, on=["received_at", "content_hash"], how="anti")
        self.stats.duplicates_skipped += before - part.height
        return part

    # --- energy (upsert per device and day) ------------------------------------------------
    def _upsert_energy(self, df: pl.DataFrame) -> FlushResult:
        res = FlushResult()
        for (dev,), new in df.group_by(["device"]):
            ddir = self.data_dir / ENERGY / f"device={dev}"
            files = self._files(ddir)
            frames = [new.with_columns(pl.lit(1).alias("_new"))]
            if files:
                old = pl.read_parquet(files).select(list(energy_schema()))
                frames.insert(0, old.with_columns(pl.lit(0).alias("_new")))
            merged = (pl.concat(frames, how="vertical_relaxed")
                      .sort(["day", "fetched_at", "_new"])
                      .unique(subset=["day"], keep="last", maintain_order=True)
                      .drop("_new").sort("day"))
            target = ddir / "part-0.parquet"
            res.bytes += atomic_write_parquet(merged, target)
            res.files += 1
            res.rows[ENERGY] += new.height
            for f in files:
                if f != target:
                    with contextlib.suppress(FileNotFoundError):
                        f.unlink()
        return res

    # --- bulk paths (simulate, import) -----------------------------------------------------
    def write_status_frame(self, df: pl.DataFrame) -> int:
        """Write many status rows at once (one file per device-day); rows already stored are skipped.

        ``df`` has the columns of ``status.status_schema()`` (missing wire keys are taken as null;
        a null ``content_hash`` is computed). Returns the number of rows newly written.
        """
        self._check_open()
        df = normalize_status_frame(df)
        if df.is_empty():
            return 0
        with self._flush_lock:
            self.flush()  # the disk then holds everything acknowledged so far
            before = df.height
            df = df.unique(subset=["device", "received_at", "content_hash"], keep="first",
                           maintain_order=True)
            written = 0
            res = FlushResult()
            name = f"part-b{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
            parts = df.partition_by(["device", "date"], as_dict=True, maintain_order=True)
            # recorded before any file is written: live flushes into these partitions check the disk
            self.spool.mark_bulk_partitions([_pkey(str(d), day) for d, day in parts])
            for (dev, day), part in parts.items():
                pdir = self._status_dir(str(dev), day)
                part = self._anti_join_disk(part, pdir)
                if part.height:
                    res.bytes += atomic_write_parquet(part.sort("received_at"), pdir / name)
                    res.files += 1
                    written += part.height
            res.rows[STATUS] = written
            self.stats.duplicates_skipped += before - df.height
        self._account(res)
        return written

    def save_tou_plan(self, device: str, plan: Mapping[str, Any]) -> Path:
        """Keep the device's TOU plan (the GET /device/tou ``data``) as ``tou/<mac>.json``; the
        warehouse prices energy with it when NAVILINK_TARIFF=tou."""
        path = self.data_dir / "tou" / f"{device}.json"
        atomic_write_bytes(orjson.dumps(plan, option=orjson.OPT_INDENT_2), path)
        return path

    def write_energy_frame(self, df: pl.DataFrame) -> int:
        """Upsert many energy rows (latest ``fetched_at`` per device and day wins); returns rows given."""
        self._check_open()
        schema = energy_schema()
        missing = [c for c in ("device", "day", "fetched_at") if c not in df.columns]
        if missing:
            raise ValueError(f"energy frame lacks columns {missing}")
        df = df.with_columns(*[pl.lit(None, dtype=t).alias(c) for c, t in schema.items()
                               if c not in df.columns])
        df = df.select([pl.col(c).cast(t) for c, t in schema.items()])
        df = df.with_columns(pl.col("device").str.to_lowercase())
        if df.is_empty():
            return 0
        with self._flush_lock:
            self.flush()
            res = self._upsert_energy(df)
        self._account(res)
        return df.height

    # --- compaction -------------------------------------------------------------------------
    def compact(self, *, device: str | None = None, day: date | None = None,
                min_files: int = 2) -> int:
        """Merge each partition's files into one (deduplicated, sorted); returns partitions merged.

        Crash-safe: a journal entry is written before the merged file replaces its sources, so a
        restart either finishes the job (merged file present) or leaves the sources untouched.
        """
        self._check_open()
        merged = 0
        with self._flush_lock:
            self.flush()
            for pdir, ds in self._partitions(device, day):
                files = self._files(pdir)
                if len(files) < min_files:
                    continue
                df = pl.read_parquet(files)
                key = ["received_at", "content_hash"] if ds == STATUS else None
                df = df.unique(subset=key, keep="first", maintain_order=True).sort(_TIME_COL[ds])
                target = pdir / f"part-c{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
                rel = [str(f.relative_to(self.data_dir)) for f in files]
                cid = self.spool.journal_compaction(str(target.relative_to(self.data_dir)), rel)
                self.stats.bytes_written += atomic_write_parquet(df, target)
                self.stats.files_written += 1
                for f in files:
                    with contextlib.suppress(FileNotFoundError):
                        f.unlink()
                _fsync_dir(pdir)
                self.spool.end_compaction(cid)
                merged += 1
                self.stats.compactions += 1
        return merged

    def _partitions(self, device: str | None, day: date | None) -> Iterable[tuple[Path, str]]:
        dev_glob = f"device={device.lower()}" if device else "device=*"
        day_glob = f"date={day.isoformat()}" if day else "date=*"
        yield from ((p, STATUS) for p in sorted((self.data_dir / STATUS).glob(f"{dev_glob}/{day_glob}")))
        if device is None:
            for ds in (EVENTS, QUARANTINE):
                yield from ((p, ds) for p in sorted((self.data_dir / ds).glob(day_glob)))

    def partition_file_counts(self) -> dict[str, int]:
        """Files per status partition (``device=<mac>/date=<day>`` -> count): for compaction policy."""
        root = self.data_dir / STATUS
        return {f"{p.parent.name}/{p.name}": len(self._files(p)) for p in root.glob("device=*/date=*")}

    # --- reading ----------------------------------------------------------------------------
    def scan(self, dataset: str) -> pl.LazyFrame:
        """A lazy frame over one dataset (empty with the right schema when nothing is stored)."""
        return scan_dataset(self.data_dir, dataset)


def scan_dataset(data_dir: Path, dataset: str) -> pl.LazyFrame:
    """Read a dataset as any polars user would (hive partitioning on); works without a Store."""
    root = Path(data_dir) / dataset
    if not any(root.glob("**/*.parquet")):
        return pl.DataFrame(schema=schema_of(dataset)).lazy()
    return pl.scan_parquet(str(root / "**" / "*.parquet"), hive_partitioning=True)


def _pkey(device: str, day: date) -> str:
    return f"{device}/{day.isoformat()}"


def _epoch_day(t: datetime) -> int:
    return (t.astimezone(UTC).date() - date(1970, 1, 1)).days


def _status_hash_from_row(r: Mapping[str, Any]) -> str:
    status = {k: r[k] for k in KNOWN_KEYS if r.get(k) is not None}
    extra = r.get("extra_json")
    if extra:
        status |= orjson.loads(extra)
    return content_hash(status)


def normalize_status_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Coerce a frame to the status file schema: add missing wire columns, UTC times, ``date``."""
    schema = status_file_schema()
    for c in ("device", "received_at"):
        if c not in df.columns:
            raise ValueError(f"status frame lacks column {c!r}")
    rt = df.schema["received_at"]
    if isinstance(rt, pl.Datetime) and rt.time_zone is None:
        raise ValueError("received_at must be timezone-aware (UTC)")
    if df.get_column("device").null_count() or df.get_column("received_at").null_count():
        raise ValueError("status frame has null device or received_at")
    df = df.with_columns(pl.col("received_at").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
                         pl.col("device").cast(pl.String).str.to_lowercase())
    df = df.with_columns(pl.col("received_at").dt.date().alias("date"))
    df = df.with_columns(*[pl.lit(None, dtype=t).alias(c) for c, t in schema.items()
                           if c not in df.columns])
    df = df.select([pl.col(c).cast(t) for c, t in schema.items()])
    if df.get_column("content_hash").null_count():
        missing = df.filter(pl.col("content_hash").is_null())
        hashes = [_status_hash_from_row(r) for r in missing.iter_rows(named=True)]
        df = pl.concat([df.filter(pl.col("content_hash").is_not_null()),
                        missing.with_columns(pl.Series("content_hash", hashes, dtype=pl.String))])
    return df
