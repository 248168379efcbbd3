"""Warehouse benchmark: full build vs one DuckDB scan, incremental refresh, a small fleet.

Usage: .venv/bin/python bench/bench_warehouse.py [--days 365] [--fleet 5] [--fleet-days 60]
       [--keep DIR]

Simulates one device for ``--days`` at a 30 s poll (5 % loss, a weekly outage) and a fleet of
``--fleet`` devices for ``--fleet-days``, then measures in one run: one full DuckDB scan of the
status Parquet (the fastest of three); ``refresh(full=True)``; a refresh after the last UTC day's files appear (held
back from the full build); a refresh with nothing new; reading every mart with a plain DuckDB
client. Prints the numbers, ratios, the seconds per model of the full build and an extrapolation,
and writes bench/results/warehouse.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import navilink_etl.refresh  # noqa: F401  (imports pyarrow, ~1.5 s: not part of a build's time)
from navilink_etl import marts, warehouse
from navilink_etl.config import NaviLinkConfig


def _simulate(data: Path, devices: int, days: float, seed: int) -> None:
    from navilink_etl.sim.simulate import simulate

    t = time.perf_counter()
    res = simulate(data, devices=devices, days=days, interval_s=30, seed=seed, loss=0.05,
                   outage_per_week=True)
    print(f"simulated {res.samples:,} samples ({devices} x {days} days) in "
          f"{time.perf_counter() - t:.0f} s", flush=True)


def _cpu_s() -> float:
    """CPU seconds of this process so far, DuckDB's threads included (less disturbed than wall
    time by other processes on a shared machine)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _scan_s(data: Path, runs: int = 3) -> tuple[float, float]:
    """One full DuckDB scan: every column of every status file read and decoded (max of each);
    the fastest of ``runs`` (a single scan of a few hundred ms swings by half on a busy machine):
    (wall seconds, CPU seconds)."""
    con = duckdb.connect()
    best, best_cpu = float("inf"), float("inf")
    for _ in range(runs):
        t, c = time.perf_counter(), _cpu_s()
        con.execute("SELECT max(COLUMNS(*)) FROM read_parquet(?, union_by_name = true, "
                    "hive_partitioning = false)",
                    [str(data / "status" / "**" / "*.parquet")]).fetchall()
        best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, _cpu_s() - c)
    con.close()
    return best, best_cpu


def _hold_back_last_day(data: Path, aside: Path) -> int:
    """Move each device's last UTC day partition to ``aside``; returns the partitions moved."""
    moved = 0
    for dev in sorted((data / "status").glob("device=*")):
        last = max(dev.glob("date=*"))
        target = aside / last.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(last), str(target))
        moved += 1
    return moved


def _restore(data: Path, aside: Path) -> None:
    for part in sorted(aside.glob("status/device=*/date=*")):
        shutil.move(str(part), str(data / part.relative_to(aside)))


def _samples(data: Path) -> int:
    con = duckdb.connect()
    n = con.execute("SELECT count(*) FROM read_parquet(?)",
                    [str(data / "status" / "**" / "*.parquet")]).fetchall()[0][0]
    con.close()
    return int(n)


def _read_marts_s(data: Path) -> tuple[float, int]:
    """A plain client (no project code, another working folder) reads every mart in full."""
    cwd = os.getcwd()
    os.chdir(tempfile.gettempdir())
    try:
        t = time.perf_counter()
        con = duckdb.connect(str(data / warehouse.WAREHOUSE_FILE), read_only=True)
        rows = sum(con.sql(f"SELECT * FROM {m}").pl().height for m in marts.MARTS)
        con.close()
        return time.perf_counter() - t, rows
    finally:
        os.chdir(cwd)


class _ModelTimes(logging.Handler):
    """Collects the refresh's per-model timings (its DEBUG lines ``<model>: <seconds> s``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if m := re.fullmatch(r"(\w+): ([0-9.]+) s", record.getMessage()):
            self.seconds[m[1]] = self.seconds.get(m[1], 0.0) + float(m[2])


def _full_build(cfg: NaviLinkConfig) -> tuple[Any, dict[str, float]]:
    """``refresh(full=True)`` and the seconds each model took in it."""
    log = logging.getLogger("navilink_etl.refresh")
    handler, level = _ModelTimes(), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        return warehouse.refresh(cfg, full=True), handler.seconds
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def measure(data: Path, label: str) -> dict[str, Any]:
    cfg = NaviLinkConfig(data_dir=data, polling_interval=30, timezone="America/Los_Angeles")
    aside = data.parent / f"{data.name}-aside"
    held = _hold_back_last_day(data, aside)
    samples = _samples(data)
    scan, scan_cpu = _scan_s(data)
    cpu = _cpu_s()
    full, model_s = _full_build(cfg)
    full_cpu = _cpu_s() - cpu
    _restore(data, aside)
    cpu = _cpu_s()
    new_day = warehouse.refresh(cfg)
    new_day_cpu = _cpu_s() - cpu
    nothing = warehouse.refresh(cfg)
    read_s, mart_rows = _read_marts_s(data)
    out = {
        "label": label, "samples": samples, "scan_s": scan, "full_s": full.seconds,
        "full_over_scan": full.seconds / scan, "full_rows": full.rows,
        "samples_per_s": samples / full.seconds,
        "new_day_devices": held, "new_day_s": new_day.seconds,
        "new_day_device_days": new_day.device_days,
        "new_day_over_full": new_day.seconds / full.seconds,
        "new_day_s_per_device": new_day.seconds / held,
        "scan_cpu_s": scan_cpu, "full_cpu_s": full_cpu, "full_cpu_over_scan_cpu": full_cpu / scan_cpu,
        "new_day_cpu_s": new_day_cpu, "new_day_cpu_over_full_cpu": new_day_cpu / full_cpu,
        "no_change_s": nothing.seconds, "read_every_mart_s": read_s, "mart_rows": mart_rows,
        "warehouse_mb": (data / warehouse.WAREHOUSE_FILE).stat().st_size / 1e6,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model_s": {k: round(v, 3) for k, v in model_s.items() if v >= 0.005},
    }
    for k, v in out.items():
        print(f"  {label} {k}: {v:.3f}" if isinstance(v, float) else f"  {label} {k}: {v}",
              flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=365, help="days of the single device (365)")
    ap.add_argument("--fleet", type=int, default=5, help="devices of the fleet (5; 0 = skip)")
    ap.add_argument("--fleet-days", type=float, default=60, help="days per fleet device (60)")
    ap.add_argument("--keep", type=Path, help="simulate into (or reuse) this folder and keep it")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_wh_"))
    root = args.keep or tmp
    try:
        one, fleet = root / "one", root / "fleet"
        if not (one / "status").exists():
            _simulate(one, 1, args.days, seed=7)
        if args.fleet and not (fleet / "status").exists():
            _simulate(fleet, args.fleet, args.fleet_days, seed=8)
        results = [measure(one, "device")]
        if args.fleet:
            results.append(measure(fleet, "fleet"))
        dev = results[0]
        years = args.days / 365
        per_year = dev["full_s"] / years
        print(f"full build {dev['full_s']:.1f} s = {dev['full_over_scan']:.2f} x one scan "
              f"({dev['scan_s']:.2f} s); one new device-day {dev['new_day_s']:.2f} s = "
              f"{100 * dev['new_day_over_full']:.1f} % of the full build")
        print(f"CPU: full build {dev['full_cpu_s']:.1f} s = {dev['full_cpu_over_scan_cpu']:.2f} x "
              f"one scan ({dev['scan_cpu_s']:.2f} s); one new device-day {dev['new_day_cpu_s']:.2f} s "
              f"= {100 * dev['new_day_cpu_over_full_cpu']:.1f} % of the full build")
        if args.fleet:
            fl = results[1]
            print(f"fleet: {args.fleet} new device-days in {fl['new_day_s']:.2f} s "
                  f"({fl['new_day_s_per_device']:.2f} s per device-day)")
            per_device_day = fl["new_day_s_per_device"]
        else:
            per_device_day = dev["new_day_s"]
        print(f"extrapolated to 100 device-years (linear; not measured): full build "
              f"~{100 * per_year / 60:.1f} min, daily refresh of 100 devices "
              f"~{100 * per_device_day:.0f} s")
        out = Path(__file__).parent / "results"
        out.mkdir(exist_ok=True)
        (out / "warehouse.json").write_text(json.dumps({
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average": os.getloadavg()[0], "results": results}, indent=2) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
