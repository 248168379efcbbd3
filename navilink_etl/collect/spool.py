"""Crash-safe append log in front of the Parquet store: SQLite in WAL mode, fsync on every commit.

Why SQLite rather than a hand-made JSONL/length-prefixed file: a commit is atomic and durable
(``synchronous=FULL`` fsyncs the WAL before ``COMMIT`` returns), a torn tail is detected by the WAL
checksums and discarded by SQLite itself, a UNIQUE key gives idempotency for free, and the flush
bookkeeping (which spool rows went into which Parquet files) lives in the same transactions.

Tables: ``pending`` (rows not yet in Parquet), ``seen`` (keys accepted recently: replay and
re-delivery never duplicate), ``flushes`` (a flush in progress is redone on restart),
``compactions`` (journal so a merge is either fully applied or not at all), ``bulk_partitions``
(partitions written by the bulk path, which bypasses ``seen``), ``meta``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import orjson

from ..errors import DiskFullError, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (k INTEGER PRIMARY KEY, at_us INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS seen_at ON seen (at_us);
CREATE TABLE IF NOT EXISTS flushes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bulk_partitions (partition TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS compactions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    sources TEXT NOT NULL
);
"""


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT from the OS, or SQLITE_FULL (SQLite's name for the same)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                or "disk is full" in str(exc))
    text = str(exc)  # polars reports the OS error inside its own exception types
    return "No space left on device" in text or "os error 28" in text or "Disk quota exceeded" in text


def storage_error(exc: BaseException, folder: PurePath, doing: str) -> StoreError:
    """An OS or SQLite failure while ``doing`` something in ``folder`` -> a StoreError saying what
    to do (a ``DiskFullError`` when the disk is full)."""
    if is_disk_full(exc):
        return DiskFullError(f"disk full: cannot {doing} in {folder}; free space on that disk or "
                             "move NAVILINK_DATA_DIR (rows already spooled are kept and written "
                             "when space returns)", folder=folder)
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return StoreError(f"cannot {doing} in {folder}: {detail}; check that the folder is writable "
                      "and its disk healthy")


@dataclass(frozen=True, slots=True)
class SpoolItem:
    """One row to spool: ``key`` is the idempotency key, ``at_us`` its time (for pruning ``seen``)."""

    dataset: str
    key: str
    at_us: int
    payload: dict


@dataclass(frozen=True, slots=True)
class FlushBatch:
    seq: int
    lo: int
    hi: int
    rows: dict[str, list[dict]]  # dataset -> payloads, in spool order
    ids: dict[str, list[int]] = field(default_factory=dict)  # dataset -> spool row ids, same order
    unreadable: list[tuple[int, str, str]] = field(default_factory=list)  # (id, dataset, raw text)


def key_int(key: str) -> int:
    """A 64-bit signed integer for a key string: ``seen`` stays compact (rowid table)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class Spool:
    """The append log. Thread-safe (one connection behind a lock); one process per data dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                       timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE name='spool_id'").fetchone()
            if row is None:
                self.spool_id = uuid.uuid4().hex[:8]
                self._db.execute("INSERT INTO meta VALUES ('spool_id', ?)", (self.spool_id,))
            else:
                self.spool_id = str(row[0])
        except sqlite3.Error as exc:
            if is_disk_full(exc):
                raise storage_error(exc, path.parent, "open the spool") from None
            raise StoreError(f"cannot open the spool {path}: {exc}; check the data directory is "
                             "writable and not on a network file system") from None
        self._lock = threading.RLock()

    # --- appending --------------------------------------------------------------------------
    def append(self, items: Iterable[SpoolItem]) -> int:
        """Durably append new items (already-seen keys are skipped); returns how many were new.

        When this returns, the rows are on disk (fsync'd WAL): a crash cannot lose them.
        """
        items = list(items)
        if not items:
            return 0
        new = 0
        with self._guard():
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for it in items:
                    cur = self._db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)",
                                           (key_int(it.key), it.at_us))
                    if cur.rowcount == 1:
                        self._db.execute("INSERT INTO pending (dataset, payload) VALUES (?, ?)",
                                         (it.dataset, orjson.dumps(it.payload)))
                        new += 1
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise storage_error(exc, self.path.parent, "append to the spool") from None
        return new

    def mark_bulk_partitions(self, partitions: Sequence[str]) -> None:
        """Partitions the bulk path is about to write: live flushes into them check the disk."""
        if not partitions:
            return
        with self._guard():
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR IGNORE INTO bulk_partitions VALUES (?)",
                                     [(p,) for p in partitions])
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise storage_error(exc, self.path.parent, "update the spool") from None

    def bulk_partitions(self) -> set[str]:
        with self._guard():
            return {str(r[0]) for r in self._db.execute("SELECT partition FROM bulk_partitions")}

    def seen_horizon_us(self, retention_us: int) -> int | None:
        """Keys older than this (newest seen minus retention) are pruned; None if nothing seen."""
        with self._guard():
            row = self._db.execute("SELECT max(at_us) FROM seen").fetchone()
        return None if row[0] is None else int(row[0]) - retention_us

    def pending_count(self) -> int:
        with self._guard():
            return int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])

    # --- flushing ---------------------------------------------------------------------------
    def incomplete_flush(self) -> FlushBatch | None:
        """A flush that started but never finished (crash): it must be redone before anything else."""
        with self._guard():
            row = self._db.execute(
                "SELECT seq, lo, hi FROM flushes WHERE state='writing' ORDER BY seq LIMIT 1"
            ).fetchone()
        return None if row is None else self._batch(int(row[0]), int(row[1]), int(row[2]))

    def begin_flush(self, limit: int | None = None) -> FlushBatch | None:
        """Claim the pending rows (up to ``limit``) as flush ``seq``; None when nothing is pending."""
        with self._guard():
            q = "SELECT min(id), max(id) FROM pending"
            if limit:
                q = f"SELECT min(id), max(id) FROM (SELECT id FROM pending ORDER BY id LIMIT {int(limit)})"
            lo, hi = self._db.execute(q).fetchone()
            if lo is None:
                return None
            try:
                self._db.execute("BEGIN IMMEDIATE")
                cur = self._db.execute("INSERT INTO flushes (lo, hi, state) VALUES (?, ?, 'writing')",
                                       (lo, hi))
                seq = int(cur.lastrowid or 0)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise storage_error(exc, self.path.parent, "start a flush in the spool") from None
        return self._batch(seq, int(lo), int(hi))

    def _batch(self, seq: int, lo: int, hi: int) -> FlushBatch:
        rows: dict[str, list[dict]] = {}
        ids: dict[str, list[int]] = {}
        unreadable: list[tuple[int, str, str]] = []
        with self._guard():
            for rid, dataset, payload in self._db.execute(
                "SELECT id, dataset, payload FROM pending WHERE id BETWEEN ? AND ? ORDER BY id", (lo, hi)
            ):
                try:
                    obj = orjson.loads(payload)
                except (orjson.JSONDecodeError, TypeError):
                    obj = None
                if not isinstance(obj, dict) or not isinstance(dataset, str):
                    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
                    unreadable.append((int(rid), str(dataset), text))
                    continue
                rows.setdefault(dataset, []).append(obj)
                ids.setdefault(dataset, []).append(int(rid))
        return FlushBatch(seq=seq, lo=lo, hi=hi, rows=rows, ids=ids, unreadable=unreadable)

    def reload(self, batch: FlushBatch) -> FlushBatch:
        return self._batch(batch.seq, batch.lo, batch.hi)

    def replace_rows(self, rows: Sequence[tuple[int, str, dict]]) -> None:
        """Rewrite spooled rows in place as (id, dataset, payload), one transaction: used to turn
        rows that cannot be written into quarantine rows, so a redo after a crash sees the same."""
        if not rows:
            return
        with self._guard():
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("UPDATE pending SET dataset = ?, payload = ? WHERE id = ?",
                                     [(ds, orjson.dumps(p), rid) for rid, ds, p in rows])
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise storage_error(exc, self.path.parent, "quarantine spooled rows") from None

    def finish_flush(self, batch: FlushBatch, *, prune_seen_before_us: int | None = None) -> None:
        """The batch is in Parquet: drop its rows from the spool (one transaction), then truncate the WAL."""
        with self._guard():
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("DELETE FROM pending WHERE id BETWEEN ? AND ?", (batch.lo, batch.hi))
                self._db.execute("DELETE FROM flushes WHERE seq = ?", (batch.seq,))
                if prune_seen_before_us is not None:
                    self._db.execute("DELETE FROM seen WHERE at_us < ?", (prune_seen_before_us,))
                self._db.execute("COMMIT")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                self._rollback()
                raise storage_error(exc, self.path.parent, "finish a flush in the spool") from None

    # --- compaction journal -----------------------------------------------------------------
    def journal_compaction(self, target: str, sources: list[str]) -> int:
        with self._guard():
            try:
                cur = self._db.execute("INSERT INTO compactions (target, sources) VALUES (?, ?)",
                                       (target, orjson.dumps(sources).decode()))
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path.parent, "journal a compaction") from None
            return int(cur.lastrowid or 0)

    def end_compaction(self, cid: int) -> None:
        with self._guard():
            try:
                self._db.execute("DELETE FROM compactions WHERE id = ?", (cid,))
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path.parent, "end a compaction") from None

    def open_compactions(self) -> list[tuple[int, str, list[str]]]:
        """Journaled compactions not ended: (id, target, sources); unreadable sources read as none."""
        out = []
        with self._guard():
            for i, t, s in self._db.execute("SELECT id, target, sources FROM compactions"):
                try:
                    sources = orjson.loads(s)
                except (orjson.JSONDecodeError, TypeError):
                    sources = []
                if not isinstance(sources, list):
                    sources = []
                out.append((int(i), str(t), [str(x) for x in sources]))
        return out

    # --- misc -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """The connection's lock; any SQLite error left unconverted becomes a StoreError."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path.parent, "use the spool") from None

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()
