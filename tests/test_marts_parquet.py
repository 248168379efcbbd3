"""Every refresh writes the stored tables as Parquet under marts/<model>/device=<mac>/: readable
by DuckDB and polars with hive partitioning, equal to the warehouse's tables, rewritten only for
the devices that changed, removed for a device that is gone, never half-written."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from navilink_etl import marts, marts_export, warehouse

from .marts_helpers import config, copy_fleet, last_day_files, source, tables


def _files(data: Path) -> dict[str, int]:
    """Every visible marts/ file and its inode (a rewrite replaces the inode)."""
    return {p.relative_to(data).as_posix(): p.stat().st_ino
            for p in (data / "marts").glob("*/*/*") if p.is_file()}


def test_partitions_equal_the_tables_and_follow_the_store(tmp_path_factory: pytest.TempPathFactory,
                                                          tmp_path: Path) -> None:
    src = source(tmp_path_factory)
    data = copy_fleet(src, tmp_path / "data")
    assert warehouse.refresh(config(data)).full
    devices = sorted(p.name[7:] for p in (data / "status").glob("device=*"))
    first = _files(data)
    # one file per stored table and device, nothing else visible (no temporary file)
    assert sorted(first) == sorted(f"marts/{t}/device={d}/part-0.parquet"
                                   for t in marts.TABLES for d in devices)
    assert set(marts.MARTS) - {"int_cycles"} <= {m for m in marts.TABLES}

    # DuckDB and polars read them with hive partitioning; the rows equal the warehouse's
    stored = tables(data / "warehouse.duckdb")
    con = duckdb.connect()
    for name in ("heating_cycles", "energy_daily", "int_day_energy"):
        glob = str(data / "marts" / name / "**" / "*.parquet")
        cols = ", ".join(f'"{c}"' for c in stored[name].columns)
        got = con.sql(f"select {cols} from read_parquet('{glob}', hive_partitioning = true) "
                      "order by all").pl()
        assert_frame_equal(got, stored[name]), name
        lazy = pl.scan_parquet(glob, hive_partitioning=True).collect()
        assert lazy.height == stored[name].height and set(lazy["device"]) == set(devices), name
    con.close()

    # one device gets a new UTC day: only its files are rewritten, and they equal the tables
    for f in last_day_files(src):
        if f.parent.parent.name == f"device={devices[1]}":
            target = data / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    result = warehouse.refresh(config(data))
    assert not result.full and result.devices == 1 and result.device_days > 0
    after = _files(data)
    assert {k.split("/")[2][7:] for k in after if after[k] != first[k]} == {devices[1]}
    now = tables(data / "warehouse.duckdb")
    assert now["int_day_energy"]["samples"].sum() > stored["int_day_energy"]["samples"].sum()
    for name in marts.TABLES:
        parts = pl.read_parquet(data / "marts" / name / "**" / "*.parquet", hive_partitioning=False)
        parts = parts.select(now[name].columns).cast(dict(now[name].schema))  # "UTC" = "Etc/UTC"
        assert_frame_equal(parts.sort(now[name].columns), now[name].sort(now[name].columns)), name

    # marts/ is healed: a partition removed by hand comes back on a refresh with nothing new
    victim = data / "marts" / "draws" / f"device={devices[2]}" / "part-0.parquet"
    victim.unlink()
    assert warehouse.refresh(config(data)).device_days == 0
    assert victim.is_file()

    # a device whose files are gone loses its partitions with its rows
    gone = devices[0]
    shutil.rmtree(data / "status" / f"device={gone}")
    shutil.rmtree(data / "energy" / f"device={gone}", ignore_errors=True)
    warehouse.refresh(config(data))
    assert not list((data / "marts").glob(f"*/device={gone}"))
    assert all(len(list((data / "marts" / t).glob("device=*"))) == 2 for t in marts.TABLES)


def test_a_partition_is_replaced_whole(tmp_path: Path) -> None:
    fs, root = marts_export.filesystem(tmp_path)
    path = marts_export.partition_path(root, "draws", "aabbccddeeff")
    marts_export.write_partition(fs, path, pa.table({"device": ["aabbccddeeff"], "x": [1.0]}))

    class Boom(Exception):
        pass

    class Exploding:
        """An Arrow-like table whose write fails midway (the writer dies with half a file)."""

        def __getattr__(self, name: str) -> object:
            raise Boom

    with pytest.raises(Boom):
        marts_export.write_partition(fs, path, Exploding())  # type: ignore[arg-type]
    # the old file is intact and no temporary file is left
    assert pl.read_parquet(path)["x"].to_list() == [1.0]
    assert [p.name for p in Path(path).parent.iterdir()] == ["part-0.parquet"]
    # a leftover of a killed writer is hidden from readers' globs and removed by prune
    leftover = Path(path).parent / ".part-0.parquet.dead.tmp"
    leftover.write_bytes(b"PAR1 half")
    assert list((tmp_path / "marts").glob("**/*.parquet")) == [Path(path)]
    marts_export.prune(fs, root, {"aabbccddeeff"}, tables=["draws"])
    assert not leftover.exists() and Path(path).exists()


def test_an_object_store_gets_whole_objects_only() -> None:
    """Through a non-local fsspec filesystem (memory:// here, s3:// in a fleet) a partition is
    uploaded in one piece, after it is complete: a failed write leaves the old object."""
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    path = marts_export.partition_path("/bucket/data/marts", "draws", "aabbccddeeff")
    marts_export.write_partition(fs, path, pa.table({"device": ["aabbccddeeff"], "x": [2.0]}))
    with pytest.raises(AttributeError):
        marts_export.write_partition(fs, path, object())  # type: ignore[arg-type]
    with fs.open(path, "rb") as fh:
        assert pl.read_parquet(fh)["x"].to_list() == [2.0]
    assert fs.find("/bucket") == [path]
    assert marts_export.devices_in(fs, "/bucket/data/marts", "draws") == {"aabbccddeeff"}
