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

On object storage (``data_dir`` = ``s3://bucket/prefix``, see ``storage.Location``; the spool is
then a local ``spool_dir``), which has no rename, the same guarantees hold this way: every file is
one PUT of the whole Parquet file (S3 shows an object only once its upload completes: never a
partial one); flush names are fixed by the spool (``part-<spool id>-<seq>``), so a flush redone
after a crash overwrites rather than duplicates; a compaction writes its merged object beside the
sources, journals them and deletes them only ``retire_after`` (10 min) later, at the next
compaction or opening, so a reader that listed them can still read them. In that window a
listing sees merged rows twice: readers deduplicate by the row key (the warehouse's ``stg_*``
models do). A crash after the merged object exists is completed on opening; before, the sources
stay as they were. docs/operations.md describes it for users.

Several writers, one store (collector shards, on one machine or many): ``Store(data_dir,
writer="s2of4")`` keeps its spool and lock in ``spool/<writer>/`` instead of ``spool/``, puts the
writer in its file names (``part-<writer>-<spool id>-<seq>``, compactions ``part-c<time>-<writer>-...``)
and compacts and cleans up only its own files, so writers never share a lock or a file name and
never merge or delete each other's files (``collect.fleet`` sees to it that one message is stored by
one writer only, also while a device moves between shards).

Nothing spooled can block the store: every value is range-checked before it enters the spool
(``limits``), a row that fails goes to quarantine with the field, the value and the reason, and a
spooled batch whose write still fails the same way twice has those rows moved to quarantine. Every
folder is formed from a checked name (a MAC, a real date, a known dataset) and checked to lie under
``data_dir``. Failures are ``StoreError``; a full disk is ``DiskFullError`` (``disk_full=True``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import io
import logging
import numbers
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, Literal

import orjson
import polars as pl

from ..errors import NaviLinkError, PayloadError, StoreError
from ..identity import is_mac, normalize_mac, require_mac
from ..redact import redact
from ..status import KNOWN_KEYS, content_hash, status_schema
from ..storage import Location
from .limits import (
    FIRST_DAY,
    LAST_DAY,
    MAX_DAY_H,
    MAX_DAY_WH,
    Columns,
    columns,
    epoch_day,
    epoch_us,
    payload_problem,
    shown,
    time_problem,
    us_in_window,
)
from .spool import DiskFullError, FlushBatch, Spool, SpoolItem, is_disk_full, storage_error

__all__ = ["DiskFullError", "Store", "StoreError"]

log = logging.getLogger(__name__)

STATUS, ENERGY, EVENTS, QUARANTINE = "status", "energy", "events", "quarantine"
DATASETS = (STATUS, ENERGY, EVENTS, QUARANTINE)
TOU_DIR = "tou"  # saved TOU plans: tou/<mac>.json (read by tariff.py)
SEEN_RETENTION = timedelta(hours=26)  # live keys remembered in the spool; older rows are checked on disk
_FLUSH_BATCH_ROWS = 25_000  # rows per flush batch: bounds the memory of a backlog (a backfill of 1,000 heaters is 365k rows)
_MIN_FREE_BYTES = 64 * 1024  # below this a flush fails fast with DiskFullError
_COMPRESSION: Literal["zstd"] = "zstd"
# On object storage the sources of a compaction stay this long after the merged object appears, so
# a reader that listed them a moment ago can still read them (it deduplicates: see the docstring).
REMOTE_RETIRE_AFTER = timedelta(minutes=10)
_WRITER = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_NAMED_WRITER = re.compile(r"^\.?part-(?:c\d{8}T\d{6}-)?s\d+of\d+-")  # a shard's file (or its temporary)


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


@functools.cache
def _columns(dataset: str) -> Columns:
    """The dataset's columns as the range checks want them (compiled once)."""
    return columns(schema_of(dataset))


@functools.cache
def _status_names() -> frozenset[str]:
    return frozenset(status_file_schema())


def schema_of(dataset: str) -> dict[str, Any]:
    return _SCHEMAS[dataset]()


# --- small helpers ------------------------------------------------------------------------------


def _dump(obj: Any) -> str:
    """JSON text of a refused row for quarantine (any value: huge integers, NaN, dates)."""
    try:
        return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return repr(obj)[:100_000]


def _plain(v: Any) -> Any:
    """numpy/polars integers -> int, so the range checks see one integer type."""
    if type(v) in _PLAIN:
        return v
    return int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v


_PLAIN = frozenset({int, str, float, bool, type(None)})


def _hash(*parts: Any) -> str:
    return hashlib.blake2b(orjson.dumps(parts, default=str), digest_size=8).hexdigest()


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder after a rename inside it makes the rename durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> int:
    """Run ``write(tmp)``, fsync, then rename over ``path``: readers see the old file or the whole
    new one, never a torn one. Returns the new file's size in bytes. A failing disk raises a
    ``StoreError`` (``DiskFullError`` when full) naming the folder; the temporary is removed."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_path(path.parent)
        return path.stat().st_size
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) or is_disk_full(exc):
            raise storage_error(exc, path.parent, f"write {path.name}") from None
        raise


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
    refused: int = 0  # rows quarantined by the store's own checks (before or after spooling)


class Store:
    """Durable store of one data directory. One writing process at a time (a lock file enforces it).

    Opening replays what a previous process left: a flush cut short is redone, a half-applied
    compaction is completed, stray temporaries are removed, and (``replay=True``) pending spool
    rows are flushed to Parquet. Opening never fails because of spooled content or a full disk:
    what cannot be written yet stays in the spool (logged).
    """

    def __init__(self, data_dir: Path | str | Location, *, replay: bool = True,
                 spool_dir: Path | None = None, retire_after: timedelta | None = None,
                 writer: str | None = None) -> None:
        self.loc = Location.from_setting(data_dir)
        self.remote = self.loc.is_remote
        # local: the folder (a Path, as before); remote: bucket/prefix as a pure path (I/O goes
        # through self.loc.fs)
        self.data_dir: PurePath = PurePosixPath(self.loc.root) if self.remote else Path(data_dir if not
                                                                                         isinstance(data_dir, Location) else data_dir.root)
        self._root = self.loc.root if self.remote else os.path.normpath(os.path.abspath(self.data_dir))
        self.retire_after = retire_after if retire_after is not None else (
            REMOTE_RETIRE_AFTER if self.remote else timedelta(0))
        if writer is not None and not _WRITER.fullmatch(writer):
            raise StoreError(f"writer name {writer[:40]!r} must be 1-32 of a-z, 0-9 and '-'")
        self.writer = writer
        self.stats = StoreStats()
        self._flush_lock = threading.RLock()
        if spool_dir is None:
            if self.remote:
                raise StoreError(f"the store {self.loc.url} is remote: give it a local spool folder "
                                 "(NAVILINK_SPOOL_DIR, default ./spool)")
            spool_dir = Path(self.data_dir) / "spool"
        # a named writer (a collector shard) keeps its own spool and lock beside the others
        self.spool_dir = Path(spool_dir) if writer is None else Path(spool_dir) / writer
        if self.remote:
            self.loc.check()  # a ConfigurationError naming NAVILINK_DATA_DIR and the fix
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.spool_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            what = "spool folder" if self.remote else "data directory"
            raise StoreError(f"cannot create the {what} {self.spool_dir}: {exc.strerror}; "
                             "check the path and its permissions (NAVILINK_SPOOL_DIR / "
                             "NAVILINK_DATA_DIR)") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            who = "" if writer is None else f" as writer {writer}"
            raise StoreError(f"the data directory {self.data_dir} (spool {self.spool_dir}) is in use{who} "
                             "by another collector, simulate or import; stop it or use another "
                             "NAVILINK_DATA_DIR / NAVILINK_SPOOL_DIR"
                             + ("" if writer is None else " or another --shard")) from None
        with contextlib.suppress(OSError):  # the pid is a courtesy; a full disk must not stop us
            os.ftruncate(self._lock_fd, 0)
            os.write(self._lock_fd, f"{os.getpid()}\n".encode())
        try:
            self.spool = Spool(self.spool_dir / "spool.sqlite")
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._closed = False
        try:
            self._recover()
        except StoreError as exc:  # bookkeeping of a crashed compaction: never a reason not to open
            log.error("could not finish the recovery of %s: %s", self.data_dir, exc)
        if replay:
            try:
                self.flush()
            except StoreError as exc:  # rows stay safe in the spool; the next flush retries
                log.error("the spool could not be written to Parquet on opening the store "
                          "(rows kept, retried on the next flush): %s", exc)

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
        self._retire(crashed=True)
        if self.remote:
            return  # an S3 PUT leaves no temporary behind
        for ds in DATASETS:
            root = Path(self.data_dir) / ds
            if root.exists():
                for tmp in root.rglob(".*.tmp"):
                    if not self._mine(tmp.name):
                        continue  # another writer's file, perhaps being written right now
                    with contextlib.suppress(OSError):
                        tmp.unlink()

    def _retire(self, *, crashed: bool = False) -> None:
        """Finish journaled compactions: where the merged file is in place, delete its sources
        (on object storage only once ``retire_after`` has passed since the merge); where it is
        not (a crash before it was written), forget the job: the sources are untouched."""
        now = datetime.now(UTC)
        for cid, target, sources in self.spool.open_compactions():
            try:
                if self._exists(self._under(self.data_dir / target)):  # the merged file is in place
                    if self.retire_after and now - _merged_at(target) < self.retire_after:
                        continue  # readers may still be reading the sources
                    self._unlink_many([self._under(self.data_dir / src) for src in sources])
                    if crashed and not self.remote:
                        log.warning("completed a compaction interrupted by a crash: %s", target)
            except (StoreError, OSError) as exc:
                log.error("could not complete an interrupted compaction %s: %s", target, exc)
            self.spool.end_compaction(cid)

    def _owns(self, name: str) -> bool:
        """Whether this store wrote the file (its spool's id is in every name it gives). On
        object storage several collectors (one spool each) share the store, and the ``date=``
        partitions of events and quarantine: each merges only its own files, so no two merge
        the same rows and none deletes a file whose flush another may still redo."""
        sid = self.spool.spool_id
        return not self.remote or name.startswith(f"part-{sid}-") or f"-{sid}-" in name

    def _retiring(self) -> set[str]:
        """Sources of merges whose deletion waits (object storage): not merged again."""
        return {src for _cid, _t, sources in self.spool.open_compactions() for src in sources}

    # --- file I/O: the local folder or the object store ------------------------------------
    @contextlib.contextmanager
    def _remote(self, doing: str) -> Iterator[None]:
        """Any failure of the object store (network, credentials, throttling) -> a StoreError:
        never mistaken for a bad row; the rows stay in the spool and the next flush retries."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot {doing} in {self.loc.url}: {type(exc).__name__}: "
                             + redact(str(exc))[:300] + "; check the store (NAVILINK_DATA_DIR, "
                             "AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID); rows stay in the spool and "
                             "are written on the next flush") from None

    def _exists(self, path: PurePath) -> bool:
        if not self.remote:
            return Path(path).exists()
        with self._remote("look up a file"):
            return self.loc.exists(str(path))

    def _unlink(self, path: PurePath) -> None:
        if self.remote:
            with self._remote("delete a file"):
                self.loc.remove(str(path))
        else:
            with contextlib.suppress(FileNotFoundError):
                Path(path).unlink()

    def _unlink_many(self, paths: list[Any]) -> None:
        """Delete files (missing ones are fine); on S3 in batched DeleteObjects requests."""
        if not self.remote:
            for p in paths:
                self._unlink(p)
        elif paths:
            with self._remote("delete files"), contextlib.suppress(FileNotFoundError):
                self.loc.fs.rm([str(p) for p in paths])

    def _write_parquet(self, df: pl.DataFrame, path: PurePath) -> int:
        """One Parquet file, atomically: a temporary + rename locally, one PUT on S3 (an object
        is visible only once complete)."""
        if not self.remote:
            return atomic_write_parquet(df, Path(path))
        buf = io.BytesIO()
        df.write_parquet(buf, compression=_COMPRESSION, statistics=True)
        with self._remote("write Parquet files"):
            return self.loc.put_atomic(str(path), buf.getvalue())

    def _read(self, files: list[Any], columns: list[str] | None = None) -> pl.DataFrame:
        if not self.remote:
            if columns is not None:
                return pl.scan_parquet([Path(f) for f in files]).select(columns).collect()
            return pl.read_parquet([Path(f) for f in files])
        with self._remote("read Parquet files"):
            blobs = self.loc.fs.cat([str(f) for f in files])
        frames = [pl.read_parquet(io.BytesIO(blobs[str(f)]), columns=columns) for f in files]
        return pl.concat(frames, how="vertical_relaxed")

    def _glob(self, root: PurePath, pattern: str) -> list[Any]:
        if not self.remote:
            return sorted(Path(root).glob(pattern))
        with self._remote("list partitions"):
            return sorted(PurePosixPath(p) for p in self.loc.fs.glob(f"{root}/{pattern}"))

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    # --- checked paths ----------------------------------------------------------------------
    def _under(self, path: PurePath) -> Any:
        """``path`` if it lies under ``data_dir`` (lexically, after ``..`` is resolved), else a
        StoreError: no name from the wire can steer a write elsewhere."""
        import posixpath

        norm = posixpath.normpath(str(path)) if self.remote else os.path.normpath(os.path.abspath(path))
        sep = "/" if self.remote else os.sep
        if not norm.startswith(self._root + sep):
            raise StoreError(f"refusing to touch {path}: it is outside the data directory "
                             f"{self.data_dir}")
        return path

    def _dir(self, dataset: str, *, device: str | None = None, day: date | None = None) -> Any:
        """The folder of one partition, formed only from checked names (a known dataset, a MAC,
        a real date between FIRST_DAY and LAST_DAY) and checked to lie under ``data_dir``."""
        if dataset not in DATASETS:
            raise StoreError(f"unknown dataset {shown(dataset)}; expected one of {DATASETS}")
        parts = [dataset]
        if device is not None:
            if not is_mac(device):
                raise PayloadError(f"device {shown(device)} is not a MAC (12 lowercase hex digits); "
                                   "the store names no folder after it", field="device")
            parts.append(f"device={device}")
        if day is not None:
            if type(day) is not date or not FIRST_DAY <= day <= LAST_DAY:
                raise PayloadError(f"day {shown(day)} is not a date in {FIRST_DAY}..{LAST_DAY}",
                                   field="date")
            parts.append(f"date={day.isoformat()}")
        return self._under(self.data_dir.joinpath(*parts))

    # --- durable appends (spool) ------------------------------------------------------------
    def append_status(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Spool status rows (``status.status_row`` dicts); returns how many the spool had not seen.

        Rows already in Parquet but no longer (or never) in the spool's key memory are dropped
        at flush time instead, so nothing is stored twice either way. A row with a bad device,
        time or value is quarantined with the reason (not counted) instead of being spooled.
        """
        self._check_open()
        items, refused = [], []
        for r in rows:
            item, why = _status_item(r)
            if item is None:
                refused.append(self._refused_item(STATUS, r, why))
            else:
                items.append(item)
        n = self.spool.append(items)
        self._refuse(refused)
        self.stats.duplicates_skipped += len(items) - n
        return n

    def append_energy(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Spool daily energy rows: device, day (date), hp_wh, he_wh, hp_h, he_h, fetched_at, source.

        Values outside a day's physics (e.g. an all-ones counter) are quarantined, not spooled.
        """
        self._check_open()
        items, refused = [], []
        for r in rows:
            item, why = _energy_item(r)
            if item is None:
                refused.append(self._refused_item(ENERGY, r, why))
            else:
                items.append(item)
        n = self.spool.append(items)
        self._refuse(refused)
        return n

    def append_event(self, kind: str, *, detail: str = "", device: str | None = None,
                     severity: str = "info", duration_s: float | None = None,
                     at: datetime | None = None) -> bool:
        """Spool one collector event (what, when, which device, how long). True if new.

        A device that is not a MAC is kept in the detail, not in the ``device`` column.
        """
        self._check_open()
        at = at or datetime.now(UTC)
        if why := time_problem("at", at):  # the event is kept, at the time it is recorded
            detail, at = f"{detail} (event time {shown(at)} refused: {why})".strip(), datetime.now(UTC)
        mac = normalize_mac(device) if device is not None else None
        if device is not None and mac is None:
            detail = f"{detail} (device {shown(device)} is not a MAC)".strip()
        at_us = epoch_us(at)
        payload = {"at": at_us, "date": epoch_day(at_us), "device": mac, "kind": kind,
                   "severity": severity, "detail": detail, "duration_s": _plain(duration_s)}
        if why := payload_problem(EVENTS, payload, _columns(EVENTS)):
            self._refuse([self._refused_item(EVENTS, payload, why)])
            return False
        key = "v|" + _hash(payload)
        return self.spool.append([SpoolItem(EVENTS, key, at_us, payload)]) == 1

    def quarantine(self, *, reason: str, raw: str | bytes, source: str, topic: str | None = None,
                   device: str | None = None, received_at: datetime | None = None) -> bool:
        """Spool a message that failed parsing, with the reason and its raw text. True if new."""
        return self.quarantine_many([dict(reason=reason, raw=raw, source=source, topic=topic,
                                          device=device, received_at=received_at)]) == 1

    def quarantine_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Spool many quarantine records (the keywords of ``quarantine``) in one transaction.

        Always accepted: a device that is not a MAC is left out of the ``device`` column (the raw
        text keeps it) and a time outside the store's window is replaced by the current time.
        """
        self._check_open()
        items = []
        for rec in records:
            payload = _quarantine_payload(**rec)
            items.append(SpoolItem(QUARANTINE, "q|" + _hash(payload), payload["received_at"], payload))
        return self.spool.append(items)

    def _refused_item(self, dataset: str, row: Mapping[str, Any] | Any, why: str) -> SpoolItem:
        payload = _refused_payload(dataset, row, why)
        return SpoolItem(QUARANTINE, "q|" + _hash(payload), payload["received_at"], payload)

    def _refuse(self, items: list[SpoolItem]) -> None:
        if items:
            log.warning("store refused %d row(s) into quarantine: %s", len(items),
                        items[0].payload["reason"])
            self.stats.refused += len(items)
            self.spool.append(items)

    def pending(self) -> int:
        """Rows in the spool not yet in Parquet."""
        return self.spool.pending_count()

    # --- flushing ---------------------------------------------------------------------------
    def flush(self) -> FlushResult:
        """Drain the spool into Parquet (atomic files); rows leave the spool only once written.

        Raises ``DiskFullError`` when the disk is full (the rows stay spooled; call again later)
        and ``StoreError`` for any other failure of the disk; never because of a row's content.
        """
        self._check_open()
        total = FlushResult()
        self._check_space()
        try:
            with self._flush_lock:
                while True:
                    batch = self.spool.incomplete_flush() or self.spool.begin_flush(_FLUSH_BATCH_ROWS)
                    if batch is None:
                        break
                    res = self._write_safely(batch)
                    horizon = self.spool.seen_horizon_us(int(SEEN_RETENTION.total_seconds() * 1e6))
                    self.spool.finish_flush(batch, prune_seen_before_us=horizon)
                    total.add(res)
                    self.stats.flushes += 1
        finally:
            self._account(total)
        return total

    def _check_space(self) -> None:
        """Fail fast, before a batch is read, while the disk has no room at all: a collector
        retrying its flush under ENOSPC then costs one statvfs, not a batch read."""
        if self.remote:
            return  # the spool's own disk is checked by SQLite (SQLITE_FULL)
        try:
            st = os.statvfs(self.data_dir)
        except OSError:
            return
        free = (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize
        if free < _MIN_FREE_BYTES and self.spool.pending_count():
            raise DiskFullError(f"disk full: {free} bytes free in {self.data_dir}; free space on that "
                                "disk or move NAVILINK_DATA_DIR (rows already spooled are kept and "
                                "written when space returns)", folder=self.data_dir)

    def _write_safely(self, batch: FlushBatch) -> FlushResult:
        """Write one batch. A failure that is not the disk's gets the batch screened (rows failing
        the store's checks go to quarantine) and one more try; a dataset whose rows still fail the
        same way twice is moved to quarantine with the reason, and the rest goes on."""
        batch = self._screen(batch, everything=False)
        reasons: dict[str, str] = {}
        moved: set[str] = set()
        for _ in range(8):
            try:
                return self._write_batch(batch)
            except _WriteFailed as exc:
                cause = exc.__cause__ or exc
                if isinstance(cause, StoreError):
                    raise cause from None  # the disk (full, read-only, gone): retry later
                if isinstance(cause, OSError) or is_disk_full(cause):
                    raise storage_error(cause, self.data_dir / exc.dataset, "write Parquet files") from None
                ds, reason = exc.dataset, f"{type(cause).__name__}: {cause}"[:500]
                if reasons.get(ds) != reason:  # a new way to fail: check each row, try again
                    reasons[ds] = reason
                    log.warning("writing spooled %s rows failed (%s); checking each row", ds, reason)
                    batch = self._screen(batch, everything=True)
                    continue
                if ds in moved:
                    break
                log.error("spooled %s rows failed to write twice (%s): moved to quarantine", ds, reason)
                self._requarantine(batch, ds, f"could not be written twice: {reason}")
                batch = self.spool.reload(batch)
                moved.add(ds)
                del reasons[ds]
        raise StoreError(f"cannot write spooled rows to {self.data_dir} ({'; '.join(reasons.values())}); "
                         "they stay in the spool; please report this with the spool file")

    def _screen(self, batch: FlushBatch, *, everything: bool) -> FlushBatch:
        """Rewrite in the spool, as quarantine rows, the batch's rows that cannot be written:
        unreadable ones always, and (``everything``) any failing the store's checks."""
        fixes: list[tuple[int, str, dict]] = []
        for rid, ds, text in batch.unreadable:
            fixes.append((rid, QUARANTINE, _quarantine_payload(
                reason=f"unreadable spooled row (dataset {shown(ds)})", raw=text, source="spool")))
        for ds, rows in batch.rows.items():
            if ds not in DATASETS:
                fixes += [(rid, QUARANTINE, _refused_payload(ds, p, "unknown dataset"))
                          for rid, p in zip(batch.ids[ds], rows, strict=True)]
            elif everything:
                fixes += [(rid, QUARANTINE, _refused_payload(ds, p, why))
                          for rid, p in zip(batch.ids[ds], rows, strict=True)
                          if (why := payload_problem(ds, p, _columns(ds)))]
        if not fixes:
            return batch
        log.warning("%d spooled row(s) cannot be written: moved to quarantine (%s)", len(fixes),
                    fixes[0][2]["reason"])
        self.stats.refused += len(fixes)
        self.spool.replace_rows(fixes)
        return self.spool.reload(batch)

    def _requarantine(self, batch: FlushBatch, dataset: str, why: str) -> None:
        rows = batch.rows.get(dataset, [])
        ids = batch.ids.get(dataset, [])
        if dataset == QUARANTINE:  # rebuilt from their text fields only
            fixes = [(rid, QUARANTINE, _quarantine_payload(
                reason=f"{str(p.get('reason'))[:500]} ({why})", raw=_dump(p), source="spool"))
                for rid, p in zip(ids, rows, strict=True)]
        else:
            fixes = [(rid, QUARANTINE, _refused_payload(dataset, p, why))
                     for rid, p in zip(ids, rows, strict=True)]
        self.stats.refused += len(fixes)
        self.spool.replace_rows(fixes)

    def _account(self, res: FlushResult) -> None:
        self.stats.files_written += res.files
        self.stats.bytes_written += res.bytes
        for k, v in res.rows.items():
            self.stats.rows_written[k] = self.stats.rows_written.get(k, 0) + v

    def _part_name(self, batch: FlushBatch) -> str:
        if self.writer is not None:
            return f"part-{self.writer}-{self.spool.spool_id}-{batch.seq:010d}.parquet"
        return f"part-{self.spool.spool_id}-{batch.seq:010d}.parquet"

    def _mine(self, name: str) -> bool:
        """A file this writer made (for the one-writer store: every file but named writers')."""
        if self.writer is None:
            return _NAMED_WRITER.search(name) is None
        return f"-{self.writer}-" in name

    def _write_batch(self, batch: FlushBatch) -> FlushResult:
        res = FlushResult()
        name = self._part_name(batch)
        for ds, write in ((STATUS, self._write_status_rows), (EVENTS, self._write_dated_rows),
                          (QUARANTINE, self._write_dated_rows), (ENERGY, self._write_energy_rows)):
            if rows := batch.rows.get(ds):
                try:
                    res.add(write(ds, rows, name))
                except (Exception, pl.exceptions.PanicException) as exc:  # a polars panic is a BaseException
                    raise _WriteFailed(ds) from exc
        return res

    def _write_status_rows(self, ds: str, rows: list[dict], name: str) -> FlushResult:
        res = FlushResult()
        df = _frame(rows, STATUS)
        horizon = self.spool.seen_horizon_us(int(SEEN_RETENTION.total_seconds() * 1e6))
        forgotten = (None if horizon is None else
                     (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=horizon)).date())
        bulk = self.spool.bulk_partitions()
        for (dev, day), part in df.group_by(["device", "date"]):
            pdir = self._dir(STATUS, device=dev, day=day)
            if (forgotten is not None and day <= forgotten) or _pkey(str(dev), day) in bulk:
                # keys the spool may have forgotten, or rows the bulk path wrote: ask the disk
                part = self._anti_join_disk(part, pdir, exclude=name)
            if part.height:
                res.bytes += self._write_parquet(part.sort("received_at"), pdir / name)
                res.files += 1
                res.rows[STATUS] += part.height
        return res

    def _write_dated_rows(self, ds: str, rows: list[dict], name: str) -> FlushResult:
        res = FlushResult()
        df = _frame(rows, ds)
        for (day,), part in df.group_by(["date"]):
            pdir = self._dir(ds, day=day)
            res.bytes += self._write_parquet(part.sort(_TIME_COL[ds]), pdir / name)
            res.files += 1
            res.rows[ds] += part.height
        return res

    def _write_energy_rows(self, ds: str, rows: list[dict], name: str) -> FlushResult:
        return self._upsert_energy(_frame(rows, ENERGY))

    def _files(self, pdir: PurePath) -> list[Any]:
        if self.remote:
            with self._remote("list files"):
                return [PurePosixPath(f) for f in self.loc.files(str(pdir))]
        p = Path(pdir)
        return sorted(p.glob("*.parquet")) if p.is_dir() else []

    def _anti_join_disk(self, part: pl.DataFrame, pdir: PurePath, *, exclude: str | None = None) -> pl.DataFrame:
        files = [f for f in self._files(pdir) if f.name != exclude]
        if not files:
            return part
        have = self._read(files, ["received_at", "content_hash"])
        before = part.height
        part = part.join(have, on=["received_at", "content_hash"], how="anti")
        self.stats.duplicates_skipped += before - part.height
        return part

    # --- energy (upsert per device and day) ------------------------------------------------
    def _upsert_energy(self, df: pl.DataFrame) -> FlushResult:
        res = FlushResult()
        for (dev,), new in df.group_by(["device"]):
            ddir = self._dir(ENERGY, device=dev)
            files = self._files(ddir)
            frames = [new.with_columns(pl.lit(1).alias("_new"))]
            if files:
                old = self._read(files).select(list(energy_schema()))
                frames.insert(0, old.with_columns(pl.lit(0).alias("_new")))
            merged = (pl.concat(frames, how="vertical_relaxed")
                      .sort(["day", "fetched_at", "_new"])
                      .unique(subset=["day"], keep="last", maintain_order=True)
                      .drop("_new").sort("day"))
            target = ddir / "part-0.parquet"
            res.bytes += self._write_parquet(merged, target)
            res.files += 1
            res.rows[ENERGY] += new.height
            for f in files:
                if f != target:
                    self._unlink(f)
        return res

    # --- bulk paths (simulate, import) -----------------------------------------------------
    def write_status_frame(self, df: pl.DataFrame) -> int:
        """Write many status rows at once (one file per device-day); rows already stored are skipped.

        ``df`` has the columns of ``status.status_schema()`` (missing wire keys are taken as null;
        a null ``content_hash`` is computed). Rows whose device is not a MAC or whose time is
        outside the store's window are quarantined. Returns the number of rows newly written.
        """
        self._check_open()
        df = normalize_status_frame(df)
        ok = (pl.col("device").str.contains(r"^[0-9a-f]{12}$")
              & pl.col("date").is_between(FIRST_DAY, LAST_DAY))
        if (bad := df.filter(~ok)).height:
            self._refuse([self._refused_item(STATUS, r, "device is not a MAC or received_at is "
                                             f"outside {FIRST_DAY}..{LAST_DAY}")
                          for r in bad.iter_rows(named=True)])
            df = df.filter(ok)
        if df.is_empty():
            return 0
        with self._flush_lock:
            self.flush()  # the disk then holds everything acknowledged so far
            before = df.height
            df = df.unique(subset=["device", "received_at", "content_hash"], keep="first",
                           maintain_order=True)
            written = 0
            res = FlushResult()
            name = f"part-b{datetime.now(UTC):%Y%m%dT%H%M%S}-{self.spool.spool_id}-{uuid.uuid4().hex[:8]}.parquet"
            parts = df.partition_by(["device", "date"], as_dict=True, maintain_order=True)
            # recorded before any file is written: live flushes into these partitions check the disk
            self.spool.mark_bulk_partitions([_pkey(str(d), day) for d, day in parts])
            try:
                for (dev, day), part in parts.items():
                    pdir = self._dir(STATUS, device=dev, day=day)
                    part = self._anti_join_disk(part, pdir)
                    if part.height:
                        res.bytes += self._write_parquet(part.sort("received_at"), pdir / name)
                        res.files += 1
                        written += part.height
            except OSError as exc:
                raise storage_error(exc, self.data_dir / STATUS, "read or write status files") from None
            finally:
                res.rows[STATUS] = written
                self._account(res)
            self.stats.duplicates_skipped += before - df.height
        return written

    def save_tou_plan(self, device: str, plan: Mapping[str, Any]) -> Any:
        """Keep the device's TOU plan (the GET /device/tou ``data``) as ``tou/<mac>.json``; the
        warehouse prices energy with it when NAVILINK_TARIFF=tou.

        Raises ``PayloadError`` (nothing saved) when the MAC is not 12 hex digits (so neither
        ``default`` nor a path can be named) or the plan fails the checks ``tariff.tou_rows`` makes.
        """
        from ..tariff import tou_rows  # the plan's one parser: what it cannot read is not saved

        mac = require_mac(device, what="TOU plan MAC")
        try:
            if not tou_rows(plan, mac):
                raise PayloadError("the plan has no price intervals")
        except (NaviLinkError, ValueError, TypeError, KeyError, OverflowError) as exc:
            reason = exc.message if isinstance(exc, NaviLinkError) else f"{type(exc).__name__}: {exc}"
            raise PayloadError(f"TOU plan of {mac} not saved: {reason}", field="tou",
                               raw=_dump(plan)[:2000]) from None
        path = self._under(self.data_dir / TOU_DIR / f"{mac}.json")
        try:
            data = orjson.dumps(plan, option=orjson.OPT_INDENT_2)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise PayloadError(f"TOU plan of {mac} not saved: {exc}", field="tou") from None
        if self.remote:
            self.loc.put_atomic(str(path), data)
        else:
            atomic_write_bytes(data, path)
        return path

    def write_energy_frame(self, df: pl.DataFrame) -> int:
        """Upsert many energy rows (latest ``fetched_at`` per device and day wins); returns rows given.

        Rows with a device that is not a MAC, a day outside the window or values outside a day's
        physics are quarantined instead.
        """
        self._check_open()
        schema = energy_schema()
        missing = [c for c in ("device", "day", "fetched_at") if c not in df.columns]
        if missing:
            raise ValueError(f"energy frame lacks columns {missing}")
        df = df.with_columns(*[pl.lit(None, dtype=t).alias(c) for c, t in schema.items()
                               if c not in df.columns])
        df = df.select([pl.col(c).cast(t) for c, t in schema.items()])
        df = df.with_columns(pl.col("device").str.to_lowercase())
        ok = (pl.col("device").str.contains(r"^[0-9a-f]{12}$").fill_null(False)
              & pl.col("day").is_between(FIRST_DAY, LAST_DAY).fill_null(False)
              & pl.col("fetched_at").dt.date().is_between(FIRST_DAY, LAST_DAY).fill_null(False))
        for col, hi in (("hp_wh", MAX_DAY_WH), ("he_wh", MAX_DAY_WH), ("hp_h", MAX_DAY_H), ("he_h", MAX_DAY_H)):
            ok = ok & pl.col(col).is_between(0, hi).fill_null(True)
        if (bad := df.filter(~ok)).height:
            self._refuse([self._refused_item(ENERGY, r, "device, day or a value is out of range")
                          for r in bad.iter_rows(named=True)])
            df = df.filter(ok)
        if df.is_empty():
            return 0
        with self._flush_lock:
            self.flush()
            try:
                res = self._upsert_energy(df)
            except OSError as exc:
                raise storage_error(exc, self.data_dir / ENERGY, "read or write energy files") from None
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
            try:
                self._retire()
                retiring = self._retiring()
                for pdir, ds in self._partitions(device, day):
                    files = [f for f in self._files(pdir)
                             if str(f.relative_to(self.data_dir)) not in retiring
                             and self._owns(f.name) and self._mine(f.name)]
                    if len(files) < min_files:
                        continue
                    df = self._read(files)
                    key = ["received_at", "content_hash"] if ds == STATUS else None
                    df = df.unique(subset=key, keep="first", maintain_order=True).sort(_TIME_COL[ds])
                    who = "" if self.writer is None else f"{self.writer}-"
                    target = pdir / (f"part-c{datetime.now(UTC):%Y%m%dT%H%M%S}-{who}{self.spool.spool_id}-"
                                     f"{uuid.uuid4().hex[:8]}.parquet")
                    rel = [str(f.relative_to(self.data_dir)) for f in files]
                    cid = self.spool.journal_compaction(str(target.relative_to(self.data_dir)), rel)
                    self.stats.bytes_written += self._write_parquet(df, target)
                    self.stats.files_written += 1
                    if not self.retire_after:
                        self._unlink_many(files)
                        if not self.remote:
                            fsync_path(Path(pdir))
                        self.spool.end_compaction(cid)
                    merged += 1
                    self.stats.compactions += 1
            except OSError as exc:
                raise storage_error(exc, self.data_dir, "compact Parquet files") from None
        return merged

    def _partitions(self, device: str | None, day: date | None) -> Iterable[tuple[PurePath, str]]:
        dev_glob = f"device={require_mac(device)}" if device else "device=*"
        day_glob = f"date={day.isoformat()}" if day else "date=*"
        yield from ((p, STATUS) for p in self._glob(self.data_dir / STATUS, f"{dev_glob}/{day_glob}"))
        if device is None:
            for ds in (EVENTS, QUARANTINE):
                yield from ((p, ds) for p in self._glob(self.data_dir / ds, day_glob))

    def partition_file_counts(self) -> dict[str, int]:
        """Files per status partition (``device=<mac>/date=<day>`` -> count): for compaction policy."""
        root = self.data_dir / STATUS
        return {f"{p.parent.name}/{p.name}": len(self._files(p)) for p in self._glob(root, "device=*/date=*")}

    # --- reading ----------------------------------------------------------------------------
    def scan(self, dataset: str) -> pl.LazyFrame:
        """A lazy frame over one dataset (empty with the right schema when nothing is stored)."""
        return scan_dataset(self.loc, dataset)


def row_problem(dataset: str, row: Mapping[str, Any]) -> str | None:
    """Why ``append_status``/``append_energy`` would quarantine ``row`` (field, value, reason),
    or None: importers check rows with it before they batch them."""
    _, why = (_status_item if dataset == STATUS else _energy_item)(row)
    return why or None


def _status_item(r: Mapping[str, Any]) -> tuple[SpoolItem | None, str]:
    at = r.get("received_at")
    if (why := time_problem("received_at", at)) or not isinstance(at, datetime):
        return None, why or "received_at is missing"
    dev = normalize_mac(r.get("device"))
    if dev is None:
        return None, f"device={shown(r.get('device'))} is not a MAC (12 hex digits)"
    at_us = epoch_us(at)
    try:
        h = r.get("content_hash") or _status_hash_from_row(r)
    except (ValueError, TypeError) as exc:
        return None, f"no content hash: {exc}"
    cols = _status_names()
    payload = {k: _plain(v) for k, v in r.items() if v is not None and k in cols}
    payload.update(device=dev, received_at=at_us, content_hash=h, date=epoch_day(at_us))
    if why := payload_problem(STATUS, payload, _columns(STATUS)):
        return None, why
    return SpoolItem(STATUS, f"s|{dev}|{at_us}|{h}", at_us, payload), ""



def _energy_item(r: Mapping[str, Any]) -> tuple[SpoolItem | None, str]:
    day, fetched = r.get("day"), r.get("fetched_at")
    if type(day) is not date or not FIRST_DAY <= day <= LAST_DAY:
        return None, f"day={shown(day)} is not a date in {FIRST_DAY}..{LAST_DAY}"
    if (why := time_problem("fetched_at", fetched)) or not isinstance(fetched, datetime):
        return None, why or "fetched_at is missing"
    dev = normalize_mac(r.get("device"))
    if dev is None:
        return None, f"device={shown(r.get('device'))} is not a MAC (12 hex digits)"
    f_us = epoch_us(fetched)
    payload = {"device": dev, "day": (day - date(1970, 1, 1)).days, "fetched_at": f_us,
               "source": r.get("source")}
    for k in ("hp_wh", "he_wh", "hp_h", "he_h"):
        payload[k] = _plain(r.get(k))
    if why := payload_problem(ENERGY, payload, _columns(ENERGY)):
        return None, why
    key = f"e|{dev}|{payload['day']}|{f_us}|" + _hash(payload)
    return SpoolItem(ENERGY, key, f_us, payload), ""



class _WriteFailed(Exception):
    """Writing one dataset of a flush batch failed; the cause is chained."""

    def __init__(self, dataset: str) -> None:
        super().__init__(dataset)
        self.dataset = dataset


def _quarantine_payload(*, reason: Any, raw: Any, source: Any, topic: Any = None, device: Any = None,
                        received_at: Any = None) -> dict[str, Any]:
    """A quarantine spool payload that always passes the checks (so quarantine never blocks)."""
    at_us = None
    if isinstance(received_at, datetime) and received_at.tzinfo is not None:
        at_us = epoch_us(received_at)
    if at_us is None or not us_in_window(at_us):
        at_us = epoch_us(datetime.now(UTC))
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes | bytearray) else str(raw)
    return {"received_at": at_us, "date": epoch_day(at_us), "device": normalize_mac(device),
            "source": _text(source), "topic": None if topic is None else _text(topic),
            "reason": _text(reason), "raw": _text(text)}


def _text(value: Any) -> str:
    """``value`` as text the spool's JSON can hold (lone surrogates replaced)."""
    text = str(value)
    return text if text.isascii() else text.encode("utf-8", "replace").decode()


def _refused_payload(dataset: str, row: Any, why: str) -> dict[str, Any]:
    """A row the store cannot write -> its quarantine payload: the reason names the field and value."""
    at = None
    if isinstance(row, Mapping):
        t = row.get(_TIME_COL.get(dataset, "received_at"))
        if isinstance(t, datetime):
            at = t
        elif isinstance(t, int) and us_in_window(t):
            at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=t)
    src = row.get("source") if isinstance(row, Mapping) else None
    dev = row.get("device") if isinstance(row, Mapping) else None
    return _quarantine_payload(reason=f"{dataset} row refused by the store: {why}", raw=_dump(row),
                               source=src if isinstance(src, str) else "store", device=dev,
                               received_at=at)


def scan_dataset(data_dir: Path | str | Location, dataset: str) -> pl.LazyFrame:
    """Read a dataset as any polars user would (hive partitioning on); works without a Store,
    on a local folder or an S3 location (polars reads S3 natively with ``storage_options``)."""
    loc = Location.from_setting(data_dir)
    if not loc.is_remote:
        root = Path(loc.root) / dataset
        if not any(root.glob("**/*.parquet")):
            return pl.DataFrame(schema=schema_of(dataset)).lazy()
        return pl.scan_parquet(str(root / "**" / "*.parquet"), hive_partitioning=True)
    if not loc.find(loc.join(dataset)):
        return pl.DataFrame(schema=schema_of(dataset)).lazy()
    return pl.scan_parquet(loc.url + f"/{dataset}/**/*.parquet", hive_partitioning=True,
                           storage_options=loc.storage_options())


def _merged_at(target: str) -> datetime:
    """When a compaction's merged file was named (``part-cYYYYmmddTHHMMSS-...``)."""
    name = target.rsplit("/", 1)[-1]
    try:
        return datetime.strptime(name[6:21], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return datetime(1970, 1, 1, tzinfo=UTC)


def _pkey(device: str, day: date) -> str:
    return f"{device}/{day.isoformat()}"


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
