"""Collector benchmark: one collector process polling 1,000 simulated heaters on 127.0.0.1.

    .venv/bin/python bench/bench_collector.py [--devices 1000] [--interval 30] [--minutes 10]

The fake cloud (REST + MQTT broker + device agents, real time) runs in a separate process so the
numbers are the collector's own: share of polls started on time (within max(1 s, 5 % of the
interval) of schedule and answered), p50/p99 request->reply latency, CPU seconds and share of one
core, peak RSS, Parquet bytes on disk per stored sample (after the shutdown compaction), and the
number of tracebacks logged (a clean shutdown logs none). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = """
import asyncio, logging, sys
logging.basicConfig(level=logging.ERROR)
from navilink_etl.sim.serve import serve
asyncio.run(serve(n_devices=int(sys.argv[1]), speed=1.0, seed=1, latency_s=float(sys.argv[2]),
                  print_fn=lambda s: print(s, flush=True)))
"""


def start_fake_cloud(devices: int, latency: float) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(devices), str(latency)],
                            stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    env: dict[str, str] = {}
    deadline = time.monotonic() + 600
    while "NAVILINK_POLLING_INTERVAL" not in env:
        line = proc.stdout.readline().decode().strip()
        if not line:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the fake cloud did not start")
            continue
        if line.startswith("export "):
            k, v = line[len("export "):].split("=", 1)
            env[k] = shlex.split(v)[0]
    return proc, env


class TracebackCounter(logging.Handler):
    """Counts log records that carry a traceback (or APScheduler's "raised an exception")."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "raised an exception" in record.getMessage():
            self.records.append(f"{record.name}: {record.getMessage()[:200]}")


def dir_bytes(path: Path, pattern: str = "**/*.parquet") -> int:
    return sum(p.stat().st_size for p in path.glob(pattern))


async def bench(devices: int, interval: float, minutes: float, data: Path, latency: float) -> dict[str, Any]:
    from navilink_etl.collect.run import run_collection
    from navilink_etl.collect.stats import percentile
    from navilink_etl.config import NaviLinkConfig

    t_setup = time.monotonic()
    proc, env = start_fake_cloud(devices, latency)
    setup_s = time.monotonic() - t_setup
    try:
        over = {k.removeprefix("NAVILINK_").lower(): v for k, v in env.items()}
        over.pop("polling_interval", None)
        cfg = NaviLinkConfig(data_dir=data, timezone="UTC", log_level="WARNING", **over)
        tracebacks = TracebackCounter()
        logging.getLogger().addHandler(tracebacks)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        stats = await run_collection(cfg, interval=interval, duration_min=minutes, clock=None,
                                     mode="bench", status_line=False, flush_every_s=60.0)
        wall = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        proc.terminate()
        proc.wait(30)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    samples = sum(stats.samples.values())
    status_bytes = dir_bytes(data / "status")
    lat = stats.latencies_s
    return {
        "devices": devices, "interval_s": interval, "minutes": minutes, "fake_cloud_start_s": round(setup_s, 1),
        "collector_wall_s": round(wall, 1),
        "polls_scheduled": sum(stats.polls_scheduled.values()),
        "polls_answered": sum(stats.polls_ok.values()),
        "polls_failed": sum(stats.polls_failed.values()),
        "polls_missed_by_scheduler": stats.polls_missed,
        "on_time_share": round(stats.on_time_share or 0.0, 4),
        "lateness_p99_s": round(percentile(stats.lateness_s, 99) or 0.0, 3),
        "latency_p50_ms": round((percentile(lat, 50) or 0.0) * 1000, 1),
        "latency_p99_ms": round((percentile(lat, 99) or 0.0) * 1000, 1),
        "cpu_s": round(cpu, 1), "cpu_share_of_one_core": round(cpu / wall, 3) if wall else None,
        "peak_rss_mb": round(ru1.ru_maxrss / 1024, 1),
        "samples": samples, "status_files": len(list((data / "status").glob("**/*.parquet"))),
        "status_bytes": status_bytes,
        "bytes_per_sample": round(status_bytes / samples, 1) if samples else None,
        "duplicates": stats.duplicates, "dropped": stats.dropped, "lost": stats.lost,
        "failures": dict(stats.failures), "fatal": stats.fatal,
        "tracebacks_logged": len(tracebacks.records), "first_tracebacks": tracebacks.records[:3],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--latency", type=float, default=0.0, help="fake device reply latency, seconds")
    ap.add_argument("--dir", type=Path, default=None)
    a = ap.parse_args()
    data = (a.dir or Path(tempfile.mkdtemp(prefix="navilink-bench-"))) / "data"
    os.environ.setdefault("HOME", str(data.parent))
    out = asyncio.run(bench(a.devices, a.interval, a.minutes, data, a.latency))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
