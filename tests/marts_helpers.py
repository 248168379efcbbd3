"""Shared by the marts/ and distributed-build tests: one small simulated fleet per session (three
heaters, three days), copied into each test's folder with the last UTC day held back, so that a
test can add it and refresh incrementally."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from navilink_etl import marts
from navilink_etl.config import NaviLinkConfig

TZ = "America/Chicago"
START = datetime(2026, 3, 2, tzinfo=UTC)


def source(factory: pytest.TempPathFactory) -> Path:
    """The simulated fleet (made once per session)."""
    src = factory.getbasetemp() / "marts-fleet"
    if not (src / "status").is_dir():
        from navilink_etl.sim.simulate import simulate

        simulate(src, devices=3, days=3, start=START, seed=41, interval_s=30, loss=0.02, ems_tz=TZ)
    return src


def last_day_files(src: Path) -> list[Path]:
    days = sorted({p.name for p in (src / "status").glob("device=*/date=*")})
    return sorted((src / "status").glob(f"device=*/{days[-1]}/*.parquet"))


def copy_fleet(src: Path, dst: Path, *, with_last_day: bool = False) -> Path:
    """``src``'s status and energy files in ``dst`` (the last UTC day only if asked)."""
    held = set() if with_last_day else set(last_day_files(src))
    for f in [*(src / "status").rglob("*.parquet"), *(src / "energy").rglob("*.parquet")]:
        if f in held:
            continue
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    return dst


def add_last_day(src: Path, dst: Path) -> None:
    for f in last_day_files(src):
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)


def config(data: Path) -> NaviLinkConfig:
    return NaviLinkConfig(data_dir=data, polling_interval=30, timezone=TZ)


def tables(path: Path) -> dict[str, pl.DataFrame]:
    """Every stored table of a warehouse file, ordered."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {n: con.sql(f"select * from {n} order by all").pl() for n in marts.TABLES}
    finally:
        con.close()


# Sums over many rows come out of DuckDB's parallel aggregation in any order: floats may differ
# in their last bits between two builds (also between two single-process builds). Everything
# else (row counts, keys, integers, strings, timestamps) must be exactly equal.
REL_TOL = 1e-9


def _flat(df: pl.DataFrame) -> pl.DataFrame:
    """Struct columns (e.g. element_use.evidence) as one column per field, so their floats get
    the same tolerance as the others."""
    for c, t in df.schema.items():
        if isinstance(t, pl.Struct):
            names = [f"{c}.{f.name}" for f in t.fields]
            df = df.with_columns(pl.col(c).struct.rename_fields(names)).unnest(c)
    return df


def assert_same_frame(a: pl.DataFrame, b: pl.DataFrame, what: str) -> None:
    a, b = _flat(a), _flat(b)
    assert a.height == b.height and a.columns == b.columns, what
    assert_frame_equal(a, b, check_exact=False, rel_tol=REL_TOL, abs_tol=1e-9), what
    exact = [c for c, t in a.schema.items() if not t.is_float()]
    assert_frame_equal(a.select(exact), b.select(exact), check_exact=True), what


def assert_same_tables(a: Path, b: Path) -> None:
    ta, tb = tables(a), tables(b)
    for name in marts.TABLES:
        assert_same_frame(ta[name], tb[name], name)
    assert ta["heating_cycles"].height > 0 and ta["energy_daily"]["device"].n_unique() == 3


def assert_same_partitions(a: Path, b: Path) -> None:
    """The same marts/ files, with the same rows."""
    fa = sorted(p.relative_to(a).as_posix() for p in (a / "marts").glob("*/*/*.parquet"))
    fb = sorted(p.relative_to(b).as_posix() for p in (b / "marts").glob("*/*/*.parquet"))
    assert fa == fb and len(fa) == 3 * len(marts.TABLES)
    for rel in fa:
        assert_same_frame(pl.read_parquet(a / rel), pl.read_parquet(b / rel), rel)
