"""The warehouse build on a Dask cluster against the single-process build, from one run.

Usage: .venv/bin/python bench/bench_distributed.py [--devices 20] [--days auto] [--sim-budget 420]
       [--fleet 1000] [--keep DIR]

1. Simulates ``--devices`` heaters (30 s poll, 5 % loss, a weekly outage). ``--days auto`` first
   times a short simulation and picks the longest period (at most 365 days) whose simulation fits
   in ``--sim-budget`` seconds; the sizes used are in the results.
2. Builds the warehouse from scratch four ways, each in a fresh process on its own copy of the
   data: single-process (the reference), ``--workers 1``, ``--workers 2`` (local clusters), and on
   an external ``dask scheduler`` + ``dask worker --nworkers 2`` pair on 127.0.0.1. Per build: wall
   seconds, the ratio to the reference, the peak RSS of the client and of each worker process, and
   whether every stored table equals the reference's (non-float columns exactly, floats within
   1e-9 relative: DuckDB's parallel sums round in any order).
3. The daily incremental refresh of a fleet of ``--fleet`` devices: two UTC days of the simulated
   heaters are copied under ``--fleet`` MACs (device column rewritten, round robin) and built, then
   the next day arrives and is refreshed single-process and with ``--workers 2``.

Writes bench/results/distributed.json. On a shared machine compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TZ = "America/Chicago"
HERE = Path(__file__).resolve()
DASK = str(Path(sys.executable).with_name("dask"))


def _config(data: Path) -> Any:
    from navilink_etl.config import NaviLinkConfig

    return NaviLinkConfig(data_dir=data, polling_interval=30, timezone=TZ)


# --- one measured build, in its own process -----------------------------------------------------


def _build(data: Path, mode: str) -> dict[str, Any]:
    """Run one refresh of ``data`` (mode: single, workers=N, scheduler=ADDR); seconds and RSS."""
    from navilink_etl import distributed, warehouse

    workers_rss: list[float] = []
    t = time.perf_counter()
    connect_s = 0.0
    if mode == "single":
        result = warehouse.refresh(_config(data))
    else:
        key, value = mode.split("=", 1)
        kwargs: dict[str, Any] = ({"workers": int(value)} if key == "workers" else {"scheduler": value})
        with distributed.cluster(**kwargs) as client:
            connect_s = time.perf_counter() - t
            engine = distributed.DaskEngine(client)
            from navilink_etl import refresh

            result = refresh.run(_config(data), engine=engine)
            workers_rss = sorted(v / 1024 for v in client.run(
                lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss).values())
    seconds = time.perf_counter() - t
    return {"mode": mode, "seconds": round(seconds, 2), "cluster_start_s": round(connect_s, 2),
            "refresh_s": round(result.seconds, 2), "full": result.full,
            "devices": result.devices, "device_days": result.device_days, "rows": result.rows,
            "client_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "worker_peak_rss_mb": [round(v, 1) for v in workers_rss]}


def _measure(data: Path, mode: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(HERE), "_build", str(data), mode], check=True,
                         capture_output=True, text=True)
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {mode:<34} {row['seconds']:8.1f} s  {row['device_days']:6d} device-days  client "
          f"{row['client_peak_rss_mb']:.0f} MB, workers {row['worker_peak_rss_mb']} MB", flush=True)
    return row


# --- comparing ----------------------------------------------------------------------------------


def _compare(a: Path, b: Path) -> dict[str, Any]:
    """Every stored table of two warehouse files: equal rows? and the largest relative float gap."""
    import duckdb

    from navilink_etl import marts

    ca, cb = duckdb.connect(str(a), read_only=True), duckdb.connect(str(b), read_only=True)
    worst, equal, rows = 0.0, True, 0
    try:
        for name in marts.TABLES:
            x = ca.sql(f"select * from {name} order by all").pl()
            y = cb.sql(f"select * from {name} order by all").pl()
            rows += x.height
            if x.height != y.height or x.columns != y.columns:
                equal = False
                continue
            exact = [c for c, t in x.schema.items() if not t.is_float()]
            if not x.select(exact).equals(y.select(exact)):
                equal = False
            for c, t in x.schema.items():
                if t.is_float():
                    gap = (x[c] - y[c]).abs() / x[c].abs().clip(lower_bound=1e-9)
                    m = gap.fill_nan(None).max()
                    if m is not None and float(m) > worst:  # type: ignore[arg-type]
                        worst = float(m)  # type: ignore[arg-type]
                    if (x[c].is_null() != y[c].is_null()).any():
                        equal = False
    finally:
        ca.close()
        cb.close()
    return {"equal": equal and worst <= 1e-9, "rows": rows, "max_float_rel_diff": worst}


# --- data ---------------------------------------------------------------------------------------


def _simulate(data: Path, devices: int, days: float, start: datetime) -> dict[str, Any]:
    from navilink_etl.sim.simulate import simulate

    t = time.perf_counter()
    res = simulate(data, devices=devices, days=days, interval_s=30, seed=7, loss=0.05,
                   outage_per_week=True, start=start, ems_tz=TZ)
    took = time.perf_counter() - t
    print(f"simulated {res.samples:,} samples ({devices} devices x {days} days) in {took:.0f} s",
          flush=True)
    return {"devices": devices, "days": days, "samples": res.samples, "seconds": round(took, 1)}


def _copy_raw(src: Path, dst: Path) -> Path:
    for dataset in ("status", "energy"):
        shutil.copytree(src / dataset, dst / dataset)
    return dst


def _clone_fleet(src: Path, dst: Path, n: int, days: list[str]) -> None:
    """``n`` devices: the status files of ``days`` (and the EMS history) of ``src``'s devices,
    copied round robin under new MACs with the device column rewritten."""
    import polars as pl

    devices = sorted(p.name[7:] for p in (src / "status").glob("device=*"))
    for i in range(n):
        base = devices[i % len(devices)]
        mac = f"0a{i:010x}"
        for day in days:
            for f in (src / "status" / f"device={base}" / f"date={day}").glob("*.parquet"):
                out = dst / "status" / f"device={mac}" / f"date={day}" / f.name
                out.parent.mkdir(parents=True, exist_ok=True)
                pl.read_parquet(f).with_columns(device=pl.lit(mac)).write_parquet(out)
        for f in (src / "energy" / f"device={base}").rglob("*.parquet"):
            out = dst / "energy" / f"device={mac}" / f.relative_to(src / "energy" / f"device={base}")
            out.parent.mkdir(parents=True, exist_ok=True)
            df = pl.read_parquet(f).with_columns(device=pl.lit(mac))
            df.write_parquet(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _external_pair(logs: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "wb"))]  # noqa: SIM115
    procs.append(subprocess.Popen([DASK, "worker", address, "--host", "127.0.0.1", "--no-dashboard",
                                   "--dashboard-address", "127.0.0.1:0", "--nworkers", "2",
                                   "--nthreads", "1"], stdout=subprocess.DEVNULL,
                                  stderr=open(logs / "worker.log", "wb")))  # noqa: SIM115
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
    return address, procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in reversed(procs):
        p.send_signal(signal.SIGINT)
    for p in reversed(procs):
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _pick_days(devices: int, budget_s: float, work: Path, start: datetime) -> tuple[float, float]:
    """Time a one-device week; the longest period (<= 365 days) simulating in ``budget_s``."""
    probe = _simulate(work / "probe", 1, 7, start)
    per_device_day = probe["seconds"] / 7
    days = max(3, min(365, int(budget_s / (per_device_day * devices))))
    return float(days), per_device_day


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--days", default="auto", help="days per device, or auto (see --sim-budget)")
    ap.add_argument("--sim-budget", type=float, default=420.0,
                    help="seconds the simulation may take when --days is auto")
    ap.add_argument("--fleet", type=int, default=1000, help="devices of the incremental refresh")
    ap.add_argument("--keep", type=Path, help="keep the data here (default: a temporary folder)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "cpus": os.cpu_count(), "load_average_start": os.getloadavg()[0]}
    try:
        if args.days == "auto":
            today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            days, per_day = _pick_days(args.devices, args.sim_budget, work, today - timedelta(days=7))
            report["simulation_probe_s_per_device_day"] = round(per_day, 3)
        else:
            days = float(args.days)
        start = datetime(2026, 1, 5, tzinfo=UTC)
        src = work / "src"
        report["simulated"] = _simulate(src, args.devices, days, start)
        report["device_years"] = round(args.devices * days / 365, 2)

        print("full builds:", flush=True)
        builds: list[dict[str, Any]] = []
        ref = _copy_raw(src, work / "single")
        builds.append(_measure(ref, "single"))
        for n in (1, 2):
            builds.append(_measure(_copy_raw(src, work / f"workers{n}"), f"workers={n}"))
        logs = work / "logs"
        logs.mkdir(exist_ok=True)
        address, procs = _external_pair(logs)
        try:
            row = _measure(_copy_raw(src, work / "external"), f"scheduler={address}")
            row["mode"] = "external scheduler + 2 workers"
            builds.append(row)
        finally:
            _stop(procs)
        folders = [ref, work / "workers1", work / "workers2", work / "external"]
        for row, folder in zip(builds, folders, strict=True):
            row["ratio_to_single"] = round(row["seconds"] / builds[0]["seconds"], 2)
            if folder != ref:
                row["vs_single"] = _compare(ref / "warehouse.duckdb", folder / "warehouse.duckdb")
        report["full_builds"] = builds

        print(f"incremental daily refresh of {args.fleet} devices:", flush=True)
        days_all = sorted({p.name[5:] for p in (src / "status").glob("device=*/date=*")})
        fleet = work / "fleet"
        _clone_fleet(src, fleet, args.fleet, days_all[-3:-1])
        base = _measure(fleet, "single")
        base["what"] = "full build of the two days before the new one"
        _clone_fleet(src, work / "newday", args.fleet, days_all[-1:])
        rows = []
        for mode in ("single", "workers=2"):
            folder = work / f"fleet-{mode.replace('=', '')}"
            shutil.copytree(fleet, folder, ignore=shutil.ignore_patterns(".duckdb"))
            shutil.copytree(work / "newday" / "status", folder / "status", dirs_exist_ok=True)
            rows.append(_measure(folder, mode))
        rows[1]["vs_single"] = _compare(work / "fleet-single" / "warehouse.duckdb",
                                        work / "fleet-workers2" / "warehouse.duckdb")
        for row in rows:
            row["ratio_to_single"] = round(row["seconds"] / rows[0]["seconds"], 2)
        report["incremental"] = {"devices": args.fleet, "history_utc_days": 2, "new_utc_days": 1,
                                 "cloned_from_simulated_devices": args.devices,
                                 "initial_build": base, "refreshes": rows}
        report["load_average_end"] = os.getloadavg()[0]
        out = HERE.parent / "results"
        out.mkdir(exist_ok=True)
        (out / "distributed.json").write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "_build":
        print(json.dumps(_build(Path(sys.argv[2]), sys.argv[3])))
    else:
        main()
