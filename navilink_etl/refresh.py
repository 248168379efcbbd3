"""Refresh the warehouse's stored tables from the files that changed since the last refresh, in a
copy of the file that then replaces ``warehouse.duckdb`` atomically (readers see old or new).
The changed devices' stored tables are also written as Parquet under ``marts/`` (``marts_export``)
before the file is published; ``run(engine=...)`` recomputes elsewhere (``distributed``)."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import duckdb
import polars as pl

from . import marts, marts_export, warehouse
from .collect.store import fsync_path
from .config import NaviLinkConfig

log = logging.getLogger(__name__)

# A refresh computes the per-sample models for a batch of devices at a time (memory bounded, cost
# linear): devices join a batch until their status files reach this many bytes (~0.5 M samples).
BATCH_BYTES = 16_000_000
MEMORY_LIMIT = "3GB"  # spills to <data_dir>/.duckdb/tmp beyond it

Progress = Callable[[str], None]

# Views over the raw samples that a batch materialises (in this order, after its stg_status) before
# its days models run: each is read by several models, or by one that would otherwise recompute it.
BATCH_VIEWS = ("int_intervals", "int_energy_slots", "int_cycle_pieces", "int_hot_water")


@dataclass
class RefreshResult:
    path: Path
    full: bool  # everything was rebuilt (no file yet, --full, or the SQL or settings changed)
    devices: int = 0  # devices whose rows were recomputed
    device_days: int = 0  # device-days recomputed from raw samples
    rows: int = 0  # rows written to the stored tables
    files_changed: int = 0
    seconds: float = 0.0
    reasons: list[str] = field(default_factory=list)


@dataclass
class _Scope:
    """What one device needs recomputed: samples from ``read_from``, rows from the local day
    ``replace_from`` on (both None: the device's whole history)."""

    device: str
    read_from: datetime | None
    replace_from: date | None
    files: list[str]
    size: int


# A refresh reads this much before the first replaced local day (and at least the sample before
# it): the previous sample, the 15 min draw context and the 3 h outlet estimate of draws fit in it.
CONTEXT = timedelta(hours=6)


# --- the manifest: raw files per device-day -----------------------------------------------------

MANIFEST_COLUMNS = {"path": pl.String, "dataset": pl.String, "device": pl.String,
                    "day": pl.Date, "size": pl.Int64, "mtime_ns": pl.Int64}


def scan_files(data_dir: warehouse.DataDir) -> pl.DataFrame:
    """Every status and energy file: path (relative), dataset, device and day from the store's
    ``device=<mac>/date=<day>`` folders (None where absent), size and mtime (on S3: a change
    token from LastModified and the ETag). Listed through fsspec, locally or on S3."""
    loc = warehouse.as_location(data_dir)
    rows: list[tuple[str, str, str | None, date | None, int, int]] = []
    for dataset in ("status", "energy"):
        for full, info in loc.find(loc.join(dataset)).items():
            rel = loc.relative(full)
            device: str | None = None
            day: date | None = None
            for part in rel.split("/")[1:-1]:
                if part.startswith("device="):
                    device = part[7:]
                elif part.startswith("date="):
                    try:
                        day = date.fromisoformat(part[5:])
                    except ValueError:
                        day = None
            rows.append((rel, dataset, device, day, info["size"], info["mtime_ns"]))
    return pl.DataFrame(rows, schema=MANIFEST_COLUMNS, orient="row")


def _changes(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Files that appeared, disappeared or changed size or mtime."""
    key = ["path", "size", "mtime_ns"]
    return pl.concat([new.join(old.select(key), on=key, how="anti"),
                      old.join(new.select(key), on=key, how="anti")])


# --- publishing ---------------------------------------------------------------------------------


@contextmanager
def _writer_lock(home: Path) -> Iterator[None]:
    """One refresh at a time per warehouse (readers never wait: they open the published file)."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "refresh.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _publish(next_path: Path, path: Path) -> None:
    fsync_path(next_path)
    os.replace(next_path, path)
    fsync_path(path.parent)


# --- building -----------------------------------------------------------------------------------


def _create_schema(con: duckdb.DuckDBPyConnection, config: NaviLinkConfig, data_dir: warehouse.DataDir) -> None:
    """Settings, macros, raw sources, views and empty stored tables of a new file."""
    warehouse.write_settings(con, config)
    create_models(con, data_dir)
    con.execute("CREATE TABLE manifest (path VARCHAR, dataset VARCHAR, device VARCHAR, day DATE, "
                "size BIGINT, mtime_ns BIGINT)")
    con.execute("CREATE TABLE warehouse_meta (sql_fingerprint VARCHAR, settings_fingerprint "
                "VARCHAR, refreshed_at TIMESTAMPTZ, models VARCHAR[])")


def session(con: duckdb.DuckDBPyConnection, tmp: Path, memory_limit: str = MEMORY_LIMIT) -> None:
    """The settings a build runs with (in this process or on a worker)."""
    tmp.mkdir(parents=True, exist_ok=True)
    con.execute("SET temp_directory = ?", [str(tmp)])
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    # An ASOF join whose left side looks small runs as a nested loop over every row of the
    # right side (int_cycle_base: cycles x samples); the sort-merge join is 5-7x faster.
    con.execute("SET asof_loop_join_threshold = 0")
    with suppress(duckdb.Error):  # in Jupyter DuckDB refuses to touch its progress bar
        con.execute("SET enable_progress_bar = false")  # progress: the callback's


def create_models(con: duckdb.DuckDBPyConnection, data_dir: warehouse.DataDir) -> None:
    """Macros, raw sources, views and empty stored tables (the settings tables exist already)."""
    for name, body in warehouse.MACROS.items():
        con.execute(f"CREATE OR REPLACE MACRO {name}{body}")
    # Models are bound against empty typed sources (binding over the real globs would read every
    # file's footer once per nesting level); each is followed by an empty temporary table of its
    # shape, so the next ones bind against flat tables. Then the sources are pointed at the data.
    warehouse.declare_sources(con, data_dir, temp=False, empty=True)
    for m in marts.MODELS:
        sql = warehouse.model_sql(m.name)
        try:
            if m.table:
                con.execute(f"CREATE TABLE main.{m.name} AS SELECT * FROM ({sql}) LIMIT 0")
            else:
                con.execute(f"CREATE VIEW main.{m.name} AS {sql}")
            con.execute(f"CREATE TEMP TABLE {m.name} AS SELECT * FROM main.{m.name} LIMIT 0")
        except duckdb.Error as exc:
            from .errors import StoreError

            raise StoreError(f"model {m.name} failed to build: {exc}", view=m.name) from None
    for m in marts.MODELS:
        con.execute(f"DROP TABLE temp.main.{m.name}")
    warehouse.declare_sources(con, data_dir, temp=False)


def _local_midnight_utc(day: date, tz: str) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.combine(day, datetime.min.time(), ZoneInfo(tz)).astimezone(UTC)


def _first_changed(con: duckdb.DuckDBPyConnection, data_dir: warehouse.DataDir,
                   changed: pl.DataFrame) -> dict[str, datetime]:
    """Per device, the earliest instant whose samples changed: the first sample of each new or
    modified file; for a removed file, the start of the UTC day before its date."""
    out: dict[str, datetime] = {}
    status = changed.filter(pl.col("dataset") == "status")
    loc = warehouse.as_location(data_dir)
    present = [p for p in status["path"].unique().to_list() if loc.exists(loc.join(p))]
    if present:
        for dev, first in con.execute(
                "SELECT device, min(received_at) FROM read_parquet(?, hive_partitioning = false, "
                "union_by_name = true) GROUP BY device",
                [[warehouse.file_url(data_dir, p) for p in present]]).fetchall():
            out[dev] = first
    for row in status.filter(~pl.col("path").is_in(present)).iter_rows(named=True):
        gone = datetime.combine(row["day"] - timedelta(days=1), datetime.min.time(), UTC)
        out[row["device"]] = min(out.get(row["device"], gone), gone)
    return out


def _incremental_scope(con: duckdb.DuckDBPyConnection, device: str, since: datetime,
                       tz: str) -> tuple[datetime | None, date | None]:
    """(read_from, replace_from) for a device whose samples changed from ``since`` on.

    Rows change from the local day holding the last stored sample before ``since`` (its interval
    reaches the new samples), and earlier for any stored event that reaches into that day (a
    cycle or standby window crossing midnight, a cycle whose end state has not settled yet). The
    samples are read from ``CONTEXT`` before that day, and at least from the sample before it.
    """
    row = con.execute("SELECT max(local_day) FROM main.int_day_energy WHERE device = ? AND "
                      "first_sample_at < ?", [device, since]).fetchall()
    start: date | None = row[0][0] if row else None
    if start is None:
        return None, None
    midnight = _local_midnight_utc(start, tz)
    for m in marts.of_keep("days"):
        if m.context_end is None:
            continue
        row = con.execute(f"SELECT min({m.day_column}) FROM main.{m.name} WHERE device = ? AND "
                          f"{m.context_end} >= ?", [device, midnight]).fetchall()
        if row and row[0][0] is not None:
            start = min(start, row[0][0])
    read_from = _local_midnight_utc(start, tz) - CONTEXT
    row = con.execute("SELECT max(last_sample_at) FROM main.int_day_energy WHERE device = ? AND "
                      "local_day < ?", [device, start]).fetchall()
    if row and row[0][0] is not None:
        read_from = min(read_from, row[0][0])
    return read_from, start


def _scopes(con: duckdb.DuckDBPyConnection, files: pl.DataFrame, changed: pl.DataFrame | None,
            tz: str, data_dir: warehouse.DataDir) -> list[_Scope]:
    """The devices to recompute from raw samples; ``changed`` None: every device, all history."""
    status = files.filter(pl.col("dataset") == "status")
    loose = [warehouse.file_url(data_dir, p) for p in status.filter(pl.col("device").is_null())["path"]]
    if changed is None:
        firsts: dict[str, datetime | None] = dict.fromkeys(status["device"].drop_nulls().unique())
        if loose:  # files outside device=<mac> folders: read with every device, filtered by it
            firsts.update(dict.fromkeys(r[0] for r in con.execute(
                "SELECT DISTINCT device FROM read_parquet(?, hive_partitioning = false, "
                "union_by_name = true) WHERE device IS NOT NULL", [loose]).fetchall()))
    else:
        firsts = dict(_first_changed(con, data_dir, changed))
    out = []
    for device, since in sorted(firsts.items()):
        read_from: datetime | None = None
        replace_from: date | None = None
        if since is not None:
            read_from, replace_from = _incremental_scope(con, device, since, tz)
        mine = status.filter(pl.col("device") == device)
        if read_from is not None:  # the store's date folders are UTC days
            mine = mine.filter(pl.col("day") >= read_from.astimezone(UTC).date())
        out.append(_Scope(device, read_from, replace_from,
                          [warehouse.file_url(data_dir, p) for p in mine["path"].to_list()] + loose,
                          int(mine["size"].sum())))
    return out


def _batches(scopes: list[_Scope], limit: int = BATCH_BYTES) -> list[list[_Scope]]:
    batches: list[list[_Scope]] = []
    size = 0
    for s in scopes:
        if not batches or size >= limit:
            batches.append([])
            size = 0
        batches[-1].append(s)
        size += s.size
    return batches


def _refresh_days(con: duckdb.DuckDBPyConnection, data_dir: warehouse.DataDir, batch: list[_Scope]) -> int:
    """Recompute the ``days`` models of one batch from its files; replace their rows."""
    cat = warehouse.catalog(con)
    glob, dataset = warehouse.SOURCES["src_status"]
    files = sorted({f for s in batch for f in s.files})
    con.execute("CREATE OR REPLACE TEMP VIEW src_status AS "
                + warehouse.source_sql(data_dir, glob, dataset, files=files))
    scope = pl.DataFrame({"device": [s.device for s in batch],
                          "read_from": [s.read_from for s in batch],
                          "replace_from": [s.replace_from for s in batch]},
                         schema={"device": pl.String, "read_from": pl.Datetime("us", "UTC"),
                                 "replace_from": pl.Date})
    con.register("_scope_df", scope)
    con.execute("CREATE OR REPLACE TEMP TABLE _scope AS SELECT * FROM _scope_df")
    con.unregister("_scope_df")
    # the scope's samples: its devices, from read_from on (after deduplication), read once
    t = time.perf_counter()
    con.execute(f"CREATE OR REPLACE TEMP TABLE stg_status AS SELECT t.* FROM {cat}.main.stg_status "
                "AS t JOIN _scope AS s ON t.device = s.device "
                "WHERE s.read_from IS NULL OR t.received_at >= s.read_from")
    log.debug("stg_status: %.2f s", time.perf_counter() - t)
    # the per-sample views the days models read are computed once per batch, not once per reader
    for name in BATCH_VIEWS:
        t = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {cat}.main.{name}")
        log.debug("%s: %.2f s", name, time.perf_counter() - t)
    rows = 0
    for m in marts.of_keep("days"):
        t = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE _new AS {warehouse.model_sql(m.name)}")
        log.debug("%s: %.2f s", m.name, time.perf_counter() - t)
        keep = (f"s.replace_from IS NULL OR t.{m.day_column} >= s.replace_from")
        con.execute(f"DELETE FROM {cat}.main.{m.name} AS t USING _scope AS s "
                    f"WHERE t.device = s.device AND ({keep})")
        n = con.execute(f"INSERT INTO {cat}.main.{m.name} BY NAME SELECT t.* FROM _new AS t "
                        f"JOIN _scope AS s ON t.device = s.device WHERE {keep}").fetchall()
        rows += int(n[0][0]) if n else 0
    con.execute("DROP TABLE _new")
    for name in ("stg_status", *BATCH_VIEWS):
        con.execute(f"DROP TABLE temp.main.{name}")
    con.execute("DROP TABLE _scope")
    con.execute("DROP VIEW temp.main.src_status")
    return rows


def _refresh_devices(con: duckdb.DuckDBPyConnection, devices: list[str] | None) -> int:
    """Recompute the ``device`` models for ``devices`` (None: all) from the stored tables."""
    cat = warehouse.catalog(con)
    shadowed = [m.name for m in marts.of_keep("days")] + ["stg_energy_daily"]
    if devices is not None:
        con.register("_devices_df", pl.DataFrame({"device": devices}, schema={"device": pl.String}))
        con.execute("CREATE OR REPLACE TEMP TABLE _devices AS SELECT * FROM _devices_df")
        con.unregister("_devices_df")
        for name in shadowed:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {cat}.main.{name} "
                        "WHERE device IN (SELECT device FROM _devices)")
    rows = 0
    for m in marts.of_keep("device"):
        t = time.perf_counter()
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {m.name} AS {warehouse.model_sql(m.name)}")
        except duckdb.Error as exc:
            exc.add_note(f"while building the model {m.name} (navilink_etl/sql/{m.name}.sql)")
            raise
        log.debug("%s: %.2f s", m.name, time.perf_counter() - t)
        if not m.stored:
            continue
        if devices is None:
            con.execute(f"DELETE FROM {cat}.main.{m.name}")
        else:
            con.execute(f"DELETE FROM {cat}.main.{m.name} WHERE device IN "
                        "(SELECT device FROM _devices)")
        n = con.execute(f"INSERT INTO {cat}.main.{m.name} BY NAME SELECT * FROM temp.main.{m.name}"
                        ).fetchall()
        rows += int(n[0][0]) if n else 0
    for m in marts.of_keep("device"):
        con.execute(f"DROP TABLE temp.main.{m.name}")
    if devices is not None:
        for name in shadowed:
            con.execute(f"DROP TABLE temp.main.{name}")
        con.execute("DROP TABLE _devices")
    return rows


class Engine(Protocol):
    """Recomputes the changed device-days and devices into ``con`` (the file being built) and
    writes their partitions under ``marts/``; returns (rows, devices, device-days)."""

    def __call__(self, con: duckdb.DuckDBPyConnection, config: NaviLinkConfig, data_dir: warehouse.DataDir,
                 files: pl.DataFrame, changed: pl.DataFrame | None,
                 say: Progress) -> tuple[int, int, int]: ...


def run(config: NaviLinkConfig, *, full: bool = False, progress: Progress | None = None,
        engine: Engine | None = None) -> RefreshResult:
    """Refresh ``<data_dir>/warehouse.duckdb``: see the module docstring and docs/warehouse.md.
    ``engine``: where the device-days are recomputed (default: here, ``_recompute``; see
    ``navilink_etl.distributed`` for a Dask cluster)."""
    say = progress or (lambda _msg: None)
    recompute = engine or _recompute
    t0 = time.perf_counter()
    data_dir = warehouse.data_dir_of(config)
    path = warehouse.warehouse_path_of(config)
    if isinstance(data_dir, Path):
        data_dir.mkdir(parents=True, exist_ok=True)
    else:
        data_dir.check()  # a store on S3: fail early, naming the setting and the fix
    path.parent.mkdir(parents=True, exist_ok=True)
    home = warehouse.local_home(path, data_dir)
    next_path = path.with_name(path.name + ".next")
    with _writer_lock(home):
        result = RefreshResult(path=path, full=full)
        sql_fp, settings_fp = warehouse.sql_fingerprint(), warehouse.settings_fingerprint(config)
        stored = warehouse.stored_fingerprints(path) if path.exists() else None
        if not full:
            if stored is None:
                result.reasons.append("no warehouse yet" if not path.exists() else
                                      "unreadable warehouse")
            elif stored[0] != sql_fp:
                result.reasons.append("the SQL changed")
            elif stored[1] != settings_fp:
                result.reasons.append("the settings or prices changed")
            result.full = bool(result.reasons)
        else:
            result.reasons.append("--full")
        for stale in (next_path, next_path.with_name(next_path.name + ".wal")):
            stale.unlink(missing_ok=True)
        files = scan_files(data_dir)
        if not result.full:
            shutil.copyfile(path, next_path)
        con = warehouse.open_file(next_path, data_dir, read_only=False)
        try:
            session(con, home / "tmp")
            if result.full:
                say("creating the warehouse's tables")
                _create_schema(con, config, data_dir)
                changed: pl.DataFrame | None = None
            else:
                old = con.sql("SELECT * FROM manifest").pl().cast(MANIFEST_COLUMNS)  # type: ignore[arg-type]
                changed = _changes(old, files)
                if changed.filter(pl.col("device").is_null()).height:
                    # files outside the store's device=<mac>/date=<day> layout: no day to key by
                    result.full = True
                    result.reasons.append("files outside device=/date= folders")
                    con.close()
                    next_path.unlink()
                    con = warehouse.open_file(next_path, data_dir, read_only=False)
                    _create_schema(con, config, data_dir)
                    changed = None
            result.files_changed = files.height if changed is None else changed.height
            if changed is None or changed.height:
                result.rows, result.devices, result.device_days = recompute(
                    con, config, data_dir, files, changed, say)
            _sync_partitions(con, data_dir, files, say)
            con.execute("DELETE FROM manifest")
            con.register("_files", files)
            con.execute("INSERT INTO manifest SELECT * FROM _files")
            con.unregister("_files")
            con.execute("DELETE FROM warehouse_meta")
            con.execute("INSERT INTO warehouse_meta VALUES (?, ?, ?, ?)",
                        [sql_fp, settings_fp, datetime.now(UTC), list(marts.NAMES)])
            con.execute("CHECKPOINT")
        except BaseException:
            con.close()
            next_path.unlink(missing_ok=True)
            raise
        con.close()
        _publish(next_path, path)
    result.seconds = time.perf_counter() - t0
    say(f"refreshed {result.device_days} device-days of {result.devices} devices, "
        f"{result.rows} rows in {result.seconds:.1f} s")
    return result


def changed_devices(files: pl.DataFrame, changed: pl.DataFrame | None) -> list[str] | None:
    """The devices whose ``device`` models a refresh recomputes (None: every device)."""
    if changed is None:
        return None
    return sorted({*changed["device"].drop_nulls().to_list()})


def day_count(con: duckdb.DuckDBPyConnection, scopes: list[_Scope]) -> int:
    """Device-days recomputed for ``scopes`` (after their ``days`` models ran in ``con``)."""
    n = 0
    for s in scopes:
        q = ("SELECT count(*) FROM main.int_day_energy WHERE device = ?"
             + ("" if s.replace_from is None else " AND local_day >= ?"))
        params: list[object] = [s.device] + ([] if s.replace_from is None else [s.replace_from])
        n += int(con.execute(q, params).fetchall()[0][0])
    return n


def _recompute(con: duckdb.DuckDBPyConnection, config: NaviLinkConfig, data_dir: warehouse.DataDir,
               files: pl.DataFrame, changed: pl.DataFrame | None,
               say: Progress) -> tuple[int, int, int]:
    """Recompute the changed device-days and devices in one transaction, then write their
    partitions under ``marts/``; (rows, devices, device-days)."""
    con.execute("BEGIN")
    try:
        scopes = _scopes(con, files, changed, config.timezone, data_dir)
        rows = 0
        batches = _batches(scopes)
        for i, batch in enumerate(batches, 1):
            say(f"samples: batch {i}/{len(batches)} ({len(batch)} devices)")
            rows += _refresh_days(con, data_dir, batch)
        day_counts = day_count(con, scopes)
        devices = changed_devices(files, changed)
        n_devices = (len({*files["device"].drop_nulls().to_list()}) if devices is None
                     else len(devices))
        say(f"marts: {n_devices} devices")
        rows += _refresh_devices(con, devices)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    fs, root = marts_export.filesystem(data_dir)
    exported = stored_devices(con, files) if devices is None else devices
    say(f"marts/: writing the partitions of {len(exported)} devices")
    marts_export.export(con, fs, root, exported)
    return rows, n_devices, day_counts


def stored_devices(con: duckdb.DuckDBPyConnection, files: pl.DataFrame) -> list[str]:
    """Every device with a file in the store or a row in a stored table."""
    union = " UNION ".join(f"SELECT device FROM main.{t}" for t in marts.TABLES)
    found = {r[0] for r in con.execute(union).fetchall() if r[0] is not None}
    return sorted(found | {*files["device"].drop_nulls().to_list()})


def _sync_partitions(con: duckdb.DuckDBPyConnection, data_dir: warehouse.DataDir, files: pl.DataFrame,
                     say: Progress) -> None:
    """Make ``marts/`` hold exactly the built file's devices: write the partitions of any device
    lacking one (e.g. a warehouse built before ``marts/`` existed) and remove those of devices
    that are gone. Runs before the file is published, so ``marts/`` is never older than it."""
    fs, root = marts_export.filesystem(data_dir)
    present = stored_devices(con, files)
    gaps = marts_export.missing(fs, root, present)
    if gaps:
        say(f"marts/: writing the partitions of {len(gaps)} devices")
        marts_export.export(con, fs, root, gaps)
    marts_export.prune(fs, root, set(present))
