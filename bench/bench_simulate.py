"""Bulk simulator benchmark: device-days at a 30 s poll into a fresh Parquet store.

    .venv/bin/python bench/bench_simulate.py [--days 365] [--devices 1] [--interval 30] [--loss 0.05]

Prints one JSON object: samples written, samples/s, wall seconds, CPU seconds of the simulating
process and of the Parquet writer process (they run in parallel; on a busy machine CPU is the
steadier figure), peak RSS of each, and Parquet bytes per sample. Target: one device-year at 30 s
well under a minute.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from navilink_etl.sim.simulate import simulate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=365.0)
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--loss", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--location", default="basement")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        res = simulate(data, devices=args.devices, days=args.days, interval_s=args.interval,
                       seed=args.seed, loss=args.loss, outage_per_week=True,
                       start=datetime(2025, 1, 1, tzinfo=UTC), location=args.location)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        child = resource.getrusage(resource.RUSAGE_CHILDREN)  # the Parquet writer process
        status_bytes = sum(f.stat().st_size for f in (data / "status").rglob("*.parquet"))
        truth_bytes = sum(f.stat().st_size for f in (data / "truth").rglob("*.parquet"))
    out = {
        "devices": args.devices, "days": args.days, "interval_s": args.interval,
        "samples": res.samples, "polls": res.polls, "pushes": res.pushes, "lost": res.lost,
        "truth_rows": res.truth_rows, "energy_rows": res.energy_rows,
        "wall_s": round(wall, 2), "cpu_s_simulating": round(cpu, 2),
        "cpu_s_writer_process": round(child.ru_utime + child.ru_stime, 2),
        "samples_per_s_wall": round(res.samples / wall),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mb_writer_process": round(child.ru_maxrss / 1024, 1),
        "status_bytes_per_sample": round(status_bytes / max(res.samples, 1), 1),
        "truth_mb": round(truth_bytes / 2**20, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
