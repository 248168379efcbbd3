"""Warehouse benchmark: build every view and read every mart over N device-years at a 30 s poll.

Usage: .venv/bin/python bench/bench_warehouse.py [--device-years 1] [--days 4] [--keep DIR]

The status data comes from the simulator for ``--days`` days per device (or is reused from
``--keep``) and is tiled in time to fill a year per device, so the benchmark measures the warehouse,
not the simulator. ``build_s`` includes computing and storing every mart (``warehouse.build``);
the marts are then read from the stored tables. Prints wall time, peak RSS, rows and bytes on disk
per stored sample (Parquet and warehouse.duckdb).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from navilink_etl import warehouse
from navilink_etl.config import NaviLinkConfig


def _seed_days(src: Path, days: int) -> Path:
    """A few simulated device-days to tile (the simulator's fast path)."""
    from navilink_etl.sim.simulate import simulate

    simulate(src, devices=1, days=days, interval_s=30, seed=7, loss=0.05, outage_per_week=True)
    return src


def tile(seed_dir: Path, out: Path, device_years: int, days: int) -> int:
    """Repeat the seed's status rows in time (and over devices) to fill ``device_years``."""
    base = pl.read_parquet(seed_dir / "status" / "**" / "*.parquet", hive_partitioning=False)
    first = base["device"][0]
    base = base.filter(pl.col("device") == first)
    t0 = base["received_at"].min()
    base = base.filter(pl.col("received_at") < t0 + timedelta(days=days))
    reps = -(-365 // days)
    total = 0
    for d in range(device_years):
        mac = f"b0{d:010x}"
        for r in range(reps):
            shift = timedelta(days=days * r)
            part = base.with_columns(
                (pl.col("received_at") + shift).alias("received_at"),
                pl.lit(mac).alias("device"),
                (pl.col("content_hash") + f"-{r}").alias("content_hash"),
            ).with_columns(pl.col("received_at").dt.date().alias("date"))
            part = part.filter(pl.col("received_at") < t0 + timedelta(days=365))
            for (day,), g in part.group_by("date"):
                folder = out / "status" / f"device={mac}" / f"date={day}"
                folder.mkdir(parents=True, exist_ok=True)
                g.write_parquet(folder / "part-0.parquet", compression="zstd")
            total += part.height
    return total


def run(data_dir: Path, threads: int, memory_limit: str | None) -> dict[str, float]:
    """Build, open with the heavy intermediates materialized, read every mart in full."""
    cfg = NaviLinkConfig(data_dir=data_dir, polling_interval=30, timezone="America/Los_Angeles")
    t = time.perf_counter()
    warehouse.build(cfg)
    built = time.perf_counter() - t
    con = warehouse.connect(cfg)
    if threads:
        con.execute(f"SET threads = {threads}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    warehouse.materialize_intermediates(con)
    opened = time.perf_counter() - t
    out: dict[str, float] = {"build_s": built, "connect_materialize_s": opened - built}
    for mart in warehouse.MARTS:
        t1 = time.perf_counter()
        out[f"rows_{mart}"] = con.sql(f"select * from {mart}").pl().height
        out[f"s_{mart}"] = time.perf_counter() - t1
    con.close()
    out["total_s"] = time.perf_counter() - t
    out["warehouse_bytes"] = float((data_dir / warehouse.WAREHOUSE_FILE).stat().st_size)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device-years", type=int, default=1)
    ap.add_argument("--days", type=int, default=4)
    ap.add_argument("--seed-dir", type=Path, help="existing simulated data to tile")
    ap.add_argument("--keep", type=Path, help="write the tiled data here and keep it")
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (0 = all)")
    ap.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 3GB (spills beyond it)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_wh_"))
    try:
        seed = args.seed_dir or _seed_days(tmp / "seed", args.days)
        out = args.keep or tmp / "data"
        if not (out / "status").exists():
            t = time.perf_counter()
            n = tile(seed, out, args.device_years, args.days)
            print(f"tiled {n:,} samples in {time.perf_counter() - t:.1f} s")
        files = list((out / "status").rglob("*.parquet"))
        size = sum(f.stat().st_size for f in files)
        n = pl.scan_parquet([str(f) for f in files]).select(pl.len()).collect().item()
        print(f"{n:,} samples, {len(files)} files, {size / 1e6:.1f} MB, {size / n:.1f} bytes/sample")
        res = run(out, args.threads, args.memory_limit)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for k, v in res.items():
            print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")
        print(f"peak_rss_mb: {peak_mb:.0f}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
