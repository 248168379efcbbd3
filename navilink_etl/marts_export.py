"""The stored tables as Parquet partitions under ``<data_dir>/marts/``, one file per device:
``marts/<model>/device=<mac>/part-0.parquet`` (every table of ``marts.TABLES``, the marts and the
stored ``int_*`` tables a distributed refresh reads back).

Spark, Trino, polars, pandas and DuckDB read ``marts/<model>/**/*.parquet`` with hive
partitioning. Like the raw store, each file also holds its ``device`` column, so a reader that
does not parse paths (or would cast an all-digit MAC to a number) still has it.

Writes go through an fsspec filesystem (``filesystem``: the one place that maps the data folder to
a filesystem and a root). Each file is replaced whole: on a local disk it is written under a
hidden temporary name beside it (``.part-0.parquet.<token>.tmp``, which no ``*.parquet`` glob
matches) and ``os.replace``d; on an object store the file is written to memory first and one PUT of
the whole object replaces it (a writer that fails midway uploads nothing). A reader sees the old file or the new one, never part of one.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from . import marts
from .storage import Location

MARTS_DIR = "marts"
PART = "part-0.parquet"
TMP_SUFFIX = ".tmp"


def filesystem(data_dir: str | Path | Location) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem holding ``data_dir`` and the root of its marts there: a local folder, or
    the store's S3 filesystem and ``bucket/prefix/marts`` (``storage.Location``)."""
    loc = data_dir if isinstance(data_dir, Location) else Location.from_setting(Path(data_dir))
    return loc.fs, loc.join(MARTS_DIR)


def partition_path(root: str, model: str, device: str) -> str:
    return f"{root}/{model}/device={device}/{PART}"


def write_partition(fs: fsspec.AbstractFileSystem, path: str, table: pa.Table) -> None:
    """Replace ``path`` with ``table`` as one Parquet file, atomically (see the module docstring)."""
    if isinstance(fs, LocalFileSystem):
        folder, name = os.path.split(path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}{TMP_SUFFIX}")
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
    else:  # an object store: the whole object in one PUT, only once it is complete
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        fs.pipe_file(path, buf.getvalue())


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def export(con: duckdb.DuckDBPyConnection, fs: fsspec.AbstractFileSystem, root: str,
           devices: Iterable[str], tables: Iterable[str] = marts.TABLES) -> int:
    """Write every table's partition of each of ``devices`` from ``con`` (a device without rows in
    a table gets an empty file of the table's schema); return the number of files written."""
    devices = sorted(set(devices))
    if not devices:
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE _export_devices (device VARCHAR)")
    con.executemany("INSERT INTO _export_devices VALUES (?)", [[d] for d in devices])
    written = 0
    try:
        for name in tables:
            # one query per table; rows in a fixed order so that equal tables give equal files
            table = con.sql(f"SELECT * FROM main.{name} WHERE device IN "
                            "(SELECT device FROM _export_devices) ORDER BY ALL").to_arrow_table()
            by_device = _split(table)
            empty = table.slice(0, 0)
            for device in devices:
                write_partition(fs, partition_path(root, name, device), by_device.get(device, empty))
                written += 1
    finally:
        con.execute("DROP TABLE IF EXISTS _export_devices")
    return written


def _split(table: pa.Table) -> dict[str, pa.Table]:
    """Rows per device of a table sorted by its first column, ``device``."""
    if table.num_rows == 0:
        return {}
    col = table.column("device").to_pylist()
    out: dict[str, pa.Table] = {}
    start = 0
    for i in range(1, len(col) + 1):
        if i == len(col) or col[i] != col[start]:
            out[col[start]] = table.slice(start, i - start)
            start = i
    return out


def read(fs: fsspec.AbstractFileSystem, root: str, name: str, devices: Iterable[str]) -> pa.Table | None:
    """The rows of ``devices`` in table ``name`` from their partitions (None: no partition)."""
    paths = [p for p in (partition_path(root, name, d) for d in sorted(set(devices))) if fs.exists(p)]
    if not paths:
        return None
    return pads.dataset(paths, format="parquet", filesystem=fs).to_table()


def missing(fs: fsspec.AbstractFileSystem, root: str, devices: Iterable[str],
            tables: Iterable[str] = marts.TABLES) -> list[str]:
    """The devices of ``devices`` lacking a partition of any of ``tables``."""
    wanted = set(devices)
    gone: set[str] = set()
    for name in tables:
        gone |= wanted - devices_in(fs, root, name)
    return sorted(gone)


def devices_in(fs: fsspec.AbstractFileSystem, root: str, name: str) -> set[str]:
    """Devices with a partition of table ``name``."""
    folder = f"{root}/{name}"
    if not fs.isdir(folder):
        return set()
    out = set()
    for entry in fs.glob(f"{folder}/device=*/{PART}"):
        base = str(entry).rstrip("/").rsplit("/", 2)[-2]
        out.add(base[7:])
    return out


def prune(fs: fsspec.AbstractFileSystem, root: str, keep: set[str],
          tables: Iterable[str] = marts.TABLES) -> int:
    """Remove the partitions of devices not in ``keep`` (and of tables no longer stored), and
    temporary files left by a writer that died; return the number of device folders removed."""
    removed = 0
    if not fs.isdir(root):
        return 0
    names = set(tables)
    for entry in fs.ls(root, detail=False):
        base = str(entry).rstrip("/").rsplit("/", 1)[-1]
        if base not in names:
            if base.startswith(".") or not fs.isdir(f"{root}/{base}"):
                continue
            fs.rm(f"{root}/{base}", recursive=True)  # a model that is no longer stored
            continue
        folder = f"{root}/{base}"
        for sub in fs.ls(folder, detail=False):
            part = str(sub).rstrip("/").rsplit("/", 1)[-1]
            if part.startswith("device=") and part[7:] not in keep:
                fs.rm(f"{folder}/{part}", recursive=True)
                removed += 1
            elif part.startswith("device=") and isinstance(fs, LocalFileSystem):
                for leftover in Path(folder, part).glob(f".*{TMP_SUFFIX}"):
                    _unlink_quietly(str(leftover))
    return removed
