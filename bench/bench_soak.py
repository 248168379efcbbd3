"""Soak benchmark: the embedded collector (fake cloud in-process) for a simulated week at high speed.

    .venv/bin/python bench/bench_soak.py [--devices 10] [--days 7] [--speed 1440] [--interval 600]

At the default speed one real minute is one simulated day. RSS is sampled every ``--sample-s``
real seconds; after ``--warmup-days`` its least-squares slope is reported in MB per simulated
day (flat is the goal), with the Python heap's allocated blocks (to tell Python objects from native
memory), the status files per device-day (bounded by compaction) and the spool size (which must
not grow). Prints one JSON object; the samples go to stderr as they are taken.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def files_per_partition(data: Path) -> list[int]:
    return [sum(1 for _ in p.glob("*.parquet")) for p in (data / "status").glob("device=*/date=*")]


def spool_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in (data / "spool").glob("spool.sqlite*") if p.is_file())


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x; None with fewer than three points."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return None if sxx == 0 else sum((x - mx) * (y - my) for x, y in points) / sxx


async def sample(clock: Any, data: Path, every_s: float, out: list[dict[str, Any]], stats: Any) -> None:
    t0, start = time.monotonic(), clock.now()
    while True:
        await asyncio.sleep(every_s)
        files = files_per_partition(data)
        row = {"real_s": round(time.monotonic() - t0, 1),
               "sim_day": round((clock.now() - start).total_seconds() / 86_400, 3),
               "rss_mb": round(rss_mb(), 1), "py_blocks": sys.getallocatedblocks(),
               "spool_bytes": spool_bytes(data),
               "files_max": max(files, default=0), "partitions": len(files),
               "samples": sum(stats.samples.values()) if stats is not None else None}
        out.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)


async def soak(a: argparse.Namespace, data: Path) -> dict[str, Any]:
    from navilink_etl.collect.run import run_collection
    from navilink_etl.collect.stats import CollectorStats
    from navilink_etl.config import NaviLinkConfig
    from navilink_etl.embedded import embedded_cloud

    cfg = NaviLinkConfig(data_dir=data, timezone="UTC", log_level="WARNING", email=None, password=None)
    rows: list[dict[str, Any]] = []
    minutes = a.days * 86_400 / a.speed / 60
    async with embedded_cloud(devices=a.devices, speed=a.speed, seed=a.seed)(cfg) as (cfg2, clock, mode):
        holder = CollectorStats()
        sampler = asyncio.create_task(sample(clock, data, a.sample_s, rows, holder))
        stats = await run_collection(cfg2, interval=a.interval, duration_min=minutes, clock=clock, mode=mode,
                                     status_line=False, flush_every_s=a.flush_s, compact_every_s=a.compact_s,
                                     refresh_every_s=0, stats=holder)
        sampler.cancel()
    after = [(r["sim_day"], r["rss_mb"]) for r in rows if r["sim_day"] >= a.warmup_days]
    spool = [(r["sim_day"], r["spool_bytes"] / 1e6) for r in rows if r["sim_day"] >= a.warmup_days]
    s = slope(after)
    sp = slope(spool)
    blocks = slope([(r["sim_day"], r["py_blocks"]) for r in rows if r["sim_day"] >= a.warmup_days])
    end_files = files_per_partition(data)
    return {
        "devices": a.devices, "simulated_days": a.days, "speed": a.speed, "interval_s": a.interval,
        "flush_every_real_s": a.flush_s, "compact_every_real_s": a.compact_s,
        "real_minutes": round(minutes, 1), "samples_stored": sum(stats.samples.values()),
        "polls_answered": sum(stats.polls_ok.values()), "polls_failed": sum(stats.polls_failed.values()),
        "rss_first_mb": rows[0]["rss_mb"] if rows else None,
        "rss_after_warmup_mb": after[0][1] if after else None, "rss_last_mb": rows[-1]["rss_mb"] if rows else None,
        "rss_peak_mb": max((r["rss_mb"] for r in rows), default=None),
        "rss_slope_mb_per_sim_day": None if s is None else round(s, 2),
        "python_blocks_slope_per_sim_day": None if blocks is None else round(blocks),
        "spool_mb_after_warmup": spool[0][1] if spool else None, "spool_mb_last": spool[-1][1] if spool else None,
        "spool_slope_mb_per_sim_day": None if sp is None else round(sp, 3),
        "status_files_per_device_day_max_during_run": max((r["files_max"] for r in rows), default=None),
        "status_files_per_device_day_max_after_stop": max(end_files, default=0),
        "device_days": len(end_files), "dropped": stats.dropped, "lost": stats.lost,
        "failures": dict(stats.failures), "fatal": stats.fatal, "rss_samples": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--days", type=float, default=7.0, help="simulated days")
    ap.add_argument("--speed", type=float, default=1440.0, help="simulated seconds per real second")
    ap.add_argument("--interval", type=float, default=600.0, help="poll interval, simulated seconds")
    ap.add_argument("--flush-s", type=float, default=10.0, help="flush every N real seconds")
    ap.add_argument("--compact-s", type=float, default=60.0, help="compaction every N real seconds")
    ap.add_argument("--sample-s", type=float, default=60.0, help="RSS sample every N real seconds")
    ap.add_argument("--warmup-days", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None)
    a = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    data = (a.dir or Path(tempfile.mkdtemp(prefix="navilink-soak-"))) / "data"
    os.environ.setdefault("HOME", str(data.parent))
    print(json.dumps(asyncio.run(soak(a, data)), indent=2))


if __name__ == "__main__":
    main()
