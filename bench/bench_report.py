"""Benchmark: the efficiency report for one device over a year of 30 s samples, marts current
(target < 5 s).

    .venv/bin/python bench/bench_report.py                 # simulate a year into a temp folder
    .venv/bin/python bench/bench_report.py --data-dir D    # reuse (or create) a simulated folder

Prints the wall and CPU time of ``build_report`` (all three formats) and of each phase, taken
from the progress messages, and writes them to bench/results/report.json. The machine's load
average is recorded too: on a shared 2-core box the wall time says little on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TARGET_S = 5.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="simulated data folder (created if empty)")
    ap.add_argument("--days", type=float, default=365, help="days to simulate and report (365)")
    ap.add_argument("--interval", type=float, default=30.0, help="poll interval in seconds (30)")
    ap.add_argument("--out", type=Path, help="report folder (default: a temp folder)")
    args = ap.parse_args(argv)

    from navilink_etl import warehouse
    from navilink_etl.config import load_config
    from navilink_etl.report.build import build_report
    from navilink_etl.sim.simulate import simulate

    tmp = tempfile.TemporaryDirectory(prefix="bench_report_")
    data_dir = args.data_dir or Path(tmp.name) / "data"
    out = args.out or Path(tmp.name) / "reports"
    if not any(data_dir.glob("status/**/*.parquet")):
        t = time.perf_counter()
        res = simulate(data_dir, devices=1, days=args.days, interval_s=args.interval, seed=0,
                       loss=0.05, outage_per_week=True)
        print(f"simulated {res.samples:,} samples in {time.perf_counter() - t:.1f} s", flush=True)
    config = load_config(data_dir=data_dir, timezone="America/Los_Angeles")
    t = time.perf_counter()
    warehouse.refresh(config)  # the marts current, as the collector keeps them
    print(f"refreshed the warehouse in {time.perf_counter() - t:.1f} s", flush=True)
    last = warehouse.query(config, "select max(day) as d from energy_daily where samples > 0"
                           )["d"][0]
    start = last - timedelta(days=int(args.days) - 1)

    marks: list[tuple[float, str]] = []
    t0, cpu0 = time.perf_counter(), time.process_time()

    def progress(msg: str) -> None:
        marks.append((time.perf_counter() - t0, msg))

    paths = build_report(config, start=start, end=last, out_dir=out, progress=progress)
    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    phases = []
    for (t, msg), (t_next, _) in zip(marks, [*marks[1:], (total, "")], strict=True):
        phases.append({"phase": msg, "seconds": round(t_next - t, 3)})
        print(f"{t_next - t:7.2f} s  {msg}")
    print(f"total {total:.2f} s wall, {cpu:.2f} s CPU (all threads) for {len(paths)} files "
          f"(target < {TARGET_S:.0f} s wall); load average {os.getloadavg()[0]:.1f}")
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "days": args.days,
        "interval_s": args.interval, "total_s": round(total, 3), "cpu_s": round(cpu, 3),
        "load_average": round(os.getloadavg()[0], 2), "target_s": TARGET_S,
        "files": len(paths), "phases": phases,
    }
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "report.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.cleanup()
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
