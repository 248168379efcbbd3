"""Collector benchmark: collector processes polling simulated heaters on 127.0.0.1.

    .venv/bin/python bench/bench_collector.py [--devices 1000] [--interval 30] [--minutes 10]
    .venv/bin/python bench/bench_collector.py fleet [--ramp 500,1000,2000] [--minutes 2]
        [--shard-devices 2000] [--out bench/results/collector.json]

``fleet`` finds the most devices one collector process holds at the interval with >= 99.9 % of
polls on time (a ramp of device counts, the fake cloud in its own process each time), then runs
two shards (``--shard 1/2`` and ``2/2``, two processes, one store) side by side, and reports CPU
and peak memory per 1,000 devices, each against the first ramp step measured in the same run.

The fake cloud (REST + MQTT broker + device agents, real time) runs in a separate process so the
numbers are the collector's own: share of polls started on time (within max(1 s, 5 % of the
interval) of schedule and answered), p50/p99 request->reply latency, CPU seconds and share of one
core, peak RSS, Parquet bytes on disk per stored sample (after the shutdown compaction), and the
number of tracebacks logged (a clean shutdown logs none). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import json
import logging
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = """
import asyncio, logging, sys
logging.basicConfig(level=logging.ERROR)
sys.path.insert(0, "bench")
from bench_collector import serve_light
asyncio.run(serve_light(int(sys.argv[1]), float(sys.argv[2])))
"""


class LightDevice:
    """A cheap ``DeviceModel`` for the benchmark's fake cloud: identity, status and DID of one
    simulated heater computed once, a changing tank charge (so samples differ), a push every ~5 min
    and flat energy history. The plant physics of 1,000s of heaters would otherwise saturate the
    fake cloud's process long before the collector; the collector does the same work either way."""

    def __init__(self, sim: Any, seed: int) -> None:
        for k in ("mac", "additional_value", "home_seq", "device_name", "firmware", "volume_gal"):
            setattr(self, k, getattr(sim, k))
        self._status = sim.snapshot(0)
        self._feature = sim.feature()
        self._n = seed
        self._next_push = 0.0

    def advance_to(self, t: Any) -> None:
        pass

    def snapshot(self, command: int) -> dict[str, int]:
        self._n += 1
        return {**self._status, "command": command, "dhwChargePer": self._n % 101}

    def apply_control(self, command: int, mode: str | None, param: list[int]) -> bool:
        return False

    def drain_pushes(self) -> list[Any]:
        from navilink_etl.sim.model import Push

        now = time.monotonic()
        if now < self._next_push:
            return []
        first = self._next_push == 0.0
        self._next_push = now + 240 + (self._n % 120)
        return [] if first else [Push(datetime.now(UTC), self.snapshot(35))]  # 35: a relay change

    def feature(self) -> dict[str, Any]:
        return self._feature

    def energy_usage(self, year: int, months: list[int]) -> dict[str, Any]:
        usage = [{"year": year, "month": m, "data": [{"hpUsage": 1500, "heUsage": 0, "hpTime": 3, "heTime": 0}]
                  * calendar.monthrange(year, m)[1]} for m in months]
        n = sum(len(u["data"]) for u in usage)
        return {"typeOfUsage": 1, "total": {"hpUsage": 1500 * n, "heUsage": 0, "hpTime": 3 * n, "heTime": 0},
                "usage": usage}


async def serve_light(n_devices: int, latency: float) -> None:
    """The fake cloud with ``n_devices`` light devices; prints the export lines, runs until killed."""
    from navilink_etl.sim.cloud import FakeCloud, build_devices
    from navilink_etl.sim.serve import export_lines

    start = datetime.now(UTC)
    devices = [LightDevice(d, i) for i, d in enumerate(build_devices(n_devices, seed=1, start=start))]
    async with FakeCloud(devices, latency_s=latency, push_interval_s=5.0) as fc:
        for line in export_lines(fc.env()):
            print(line, flush=True)
        await asyncio.Event().wait()


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
    t_setup = time.monotonic()
    proc, env = start_fake_cloud(devices, latency)
    setup_s = time.monotonic() - t_setup
    try:
        out = await collect(env, devices, interval, minutes, data, shard=None)
    finally:
        proc.terminate()
        proc.wait(30)
    out["fake_cloud_start_s"] = round(setup_s, 1)
    return out


async def collect(env: dict[str, str], devices: int, interval: float, minutes: float, data: Path,
                  shard: str | None) -> dict[str, Any]:
    """One collector in this process against the fake cloud ``env`` points at."""
    from navilink_etl.collect.run import run_collection
    from navilink_etl.collect.stats import CollectorStats, percentile
    from navilink_etl.config import NaviLinkConfig

    over = {k.removeprefix("NAVILINK_").lower(): v for k, v in env.items()}
    over.pop("polling_interval", None)
    cfg = NaviLinkConfig(data_dir=data, timezone="UTC", log_level="WARNING", shard=shard,
                         refresh_minutes=0, **over)
    tracebacks = TracebackCounter()
    logging.getLogger().addHandler(tracebacks)
    rss0 = _rss_mb()
    live = CollectorStats()
    warm: dict[str, float] = {}

    async def snapshot() -> None:  # steady state: after the start-up interval (backfills, TOU plans)
        await asyncio.sleep(WARMUP_INTERVALS * interval)
        warm.update(scheduled=sum(live.polls_scheduled.values()), on_time=live.polls_on_time,
                    ok=sum(live.polls_ok.values()), cpu=_own_cpu_s(), t=time.monotonic())

    watcher = asyncio.create_task(snapshot())
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    stats = await run_collection(cfg, interval=interval, duration_min=minutes, clock=None,
                                 mode="bench", status_line=False, flush_every_s=60.0, stats=live)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    watcher.cancel()
    steady: dict[str, Any] = {}
    if warm:
        n = sum(stats.polls_scheduled.values()) - warm["scheduled"]
        steady = {"steady_polls_scheduled": n,
                  # a poll is counted scheduled when it starts and on time when answered: at most 1
                  "steady_on_time_share": min(1.0, round((stats.polls_on_time - warm["on_time"]) / n, 5)) if n else None,
                  "steady_answered_share": min(1.0, round((sum(stats.polls_ok.values()) - warm["ok"]) / n, 5))
                  if n else None,
                  "steady_cpu_share_of_one_core": round((_own_cpu_s() - warm["cpu"])
                                                        / max(time.monotonic() - warm["t"], 1e-9), 3)}
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    samples = sum(stats.samples.values())
    status_bytes = dir_bytes(data / "status")
    lat = stats.latencies_s
    return {
        "devices": len(stats.devices), "account_devices": devices, "shard": shard or "1/1",
        "interval_s": interval, "minutes": minutes, "collector_wall_s": round(wall, 1),
        "polls_scheduled": sum(stats.polls_scheduled.values()),
        "polls_answered": sum(stats.polls_ok.values()),
        "polls_failed": sum(stats.polls_failed.values()),
        "polls_missed_by_scheduler": stats.polls_missed,
        "on_time_share": round(stats.on_time_share or 0.0, 4),
        "lateness_p99_s": round(percentile(stats.lateness_s, 99) or 0.0, 3),
        "latency_p50_ms": round((percentile(lat, 50) or 0.0) * 1000, 1),
        "latency_p99_ms": round((percentile(lat, 99) or 0.0) * 1000, 1),
        "cpu_s": round(cpu, 1), "cpu_share_of_one_core": round(cpu / wall, 3) if wall else None,
        "peak_rss_mb": round(ru1.ru_maxrss / 1024, 1), "rss_before_start_mb": round(rss0, 1),
        "mqtt_connections": -(-len(stats.devices) // 49),
        "samples": samples, "status_files": len(list((data / "status").glob("**/*.parquet"))),
        "status_bytes": status_bytes,
        "bytes_per_sample": round(status_bytes / samples, 1) if samples else None,
        "duplicates": stats.duplicates, "dropped": stats.dropped, "lost": stats.lost,
        "failures": dict(stats.failures), "fatal": stats.fatal,
        "tracebacks_logged": len(tracebacks.records), "first_tracebacks": tracebacks.records[:3],
    } | steady


def _rss_mb() -> float:
    """Resident memory of this process now (Linux), MB."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


WARMUP_INTERVALS = 1.5  # the first interval spreads first polls, energy backfills and TOU reads


def _own_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process so far (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def worker(argv: list[str]) -> None:
    """``worker DEVICES INTERVAL MINUTES DATA SHARD`` (the fake cloud's settings in the environment
    variable BENCH_CLOUD_ENV, not on the command line): one collector process, prints JSON."""
    devices, interval, minutes, data, shard = argv
    env = json.loads(os.environ.pop("BENCH_CLOUD_ENV"))
    out = asyncio.run(collect(env, int(devices), float(interval), float(minutes), Path(data),
                              None if shard == "1/1" else shard))
    print("RESULT " + json.dumps(out), flush=True)


def run_workers(env: dict[str, str], devices: int, interval: float, minutes: float, data: Path,
                shards: list[str]) -> list[dict[str, Any]]:
    """Collector processes side by side (one per shard) into one store; their JSON results."""
    procs = [subprocess.Popen([sys.executable, __file__, "worker", str(devices), str(interval),
                               str(minutes), str(data), sh], stdout=subprocess.PIPE, cwd=ROOT,
                              env=os.environ | {"BENCH_CLOUD_ENV": json.dumps(env)})
             for sh in shards]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=minutes * 60 + 600)
        line = next((ln for ln in out.decode().splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"a collector worker failed (exit {p.returncode})")
        results.append(json.loads(line[len("RESULT "):]))
    return results


def fleet(ramp: list[int], interval: float, minutes: float, shard_devices: int | None, latency: float,
          root: Path) -> dict[str, Any]:
    """The ramp (one collector process), then two shards side by side; figures per 1,000 devices."""
    steps: list[dict[str, Any]] = []
    for n in ramp:
        t = time.monotonic()
        proc, env = start_fake_cloud(n, latency)
        start_s = time.monotonic() - t
        cpu0, t0 = _cpu_s(proc.pid), time.monotonic()
        try:
            r = run_workers(env, n, interval, minutes, root / f"one-{n}" / "data", ["1/1"])[0]
        finally:
            cloud_cpu = (_cpu_s(proc.pid) - cpu0) / max(time.monotonic() - t0, 1e-9)
            proc.terminate()
            proc.wait(30)
        r.update(fake_cloud_start_s=round(start_s, 1), fake_cloud_cpu_share=round(cloud_cpu, 3))
        r["ok"] = (r.get("steady_on_time_share") or 0.0) >= 0.999 and (r.get("steady_answered_share") or 0.0) >= 0.999
        steps.append(_per_thousand(r))
        print(json.dumps({k: r.get(k) for k in ("devices", "on_time_share", "steady_on_time_share",
                                                "steady_cpu_share_of_one_core", "peak_rss_mb", "ok")}),
              file=sys.stderr, flush=True)
        if not r["ok"]:
            break
    held = [s for s in steps if s["ok"]]
    out: dict[str, Any] = {"interval_s": interval, "minutes_per_run": minutes, "cpu_cores": os.cpu_count(),
                           "ramp": steps, "max_devices_one_process": max((s["devices"] for s in held), default=0),
                           "max_tried": steps[-1]["devices"] if steps else 0}
    ref = steps[0]
    out["reference"] = {"devices": ref["devices"], "cpu_share_per_1000": ref["cpu_share_per_1000"],
                        "peak_rss_mb": ref["peak_rss_mb"]}
    for s in steps:
        s["cpu_per_1000_vs_reference"] = round(s["cpu_share_per_1000"] / ref["cpu_share_per_1000"], 3)
        s["peak_rss_vs_reference"] = round(s["peak_rss_mb"] / ref["peak_rss_mb"], 3)
    if len(steps) >= 2:  # marginal memory: the slope between the first and the last step
        a, b = steps[0], steps[-1]
        out["rss_mb_per_1000_marginal"] = round((b["peak_rss_mb"] - a["peak_rss_mb"])
                                                / max(b["devices"] - a["devices"], 1) * 1000, 1)
    n2 = shard_devices or out["max_devices_one_process"] or ramp[0]
    proc, env = start_fake_cloud(n2, latency)
    cpu0, t0 = _cpu_s(proc.pid), time.monotonic()
    try:
        pair = run_workers(env, n2, interval, minutes, root / f"two-{n2}" / "data", ["1/2", "2/2"])
    finally:
        cloud_cpu = (_cpu_s(proc.pid) - cpu0) / max(time.monotonic() - t0, 1e-9)
        proc.terminate()
        proc.wait(30)
    pair = [_per_thousand(r) for r in pair]
    out["two_shards"] = {
        "account_devices": n2, "fake_cloud_cpu_share": round(cloud_cpu, 3), "shards": pair,
        "devices_split": [r["devices"] for r in pair],
        "all_devices_once": sum(r["devices"] for r in pair) == n2,
        "on_time_share_min": min(r["on_time_share"] for r in pair),
        "steady_on_time_share_min": min(r.get("steady_on_time_share") or 0.0 for r in pair),
        "cpu_per_1000_vs_reference": [round(r["cpu_share_per_1000"] / ref["cpu_share_per_1000"], 3) for r in pair],
    }
    return out


def _per_thousand(r: dict[str, Any]) -> dict[str, Any]:
    n = max(r["devices"], 1)
    cpu = r.get("steady_cpu_share_of_one_core") or r["cpu_share_of_one_core"] or 0.0
    r["cpu_share_per_1000"] = round(cpu / n * 1000, 4)
    r["peak_rss_mb_per_1000"] = round(r["peak_rss_mb"] / n * 1000, 1)
    return r


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "fleet":
        fp = argparse.ArgumentParser(description="ramp + two shards; writes bench/results/collector.json")
        fp.add_argument("--ramp", default="1000,1500,2000,2500,3000")
        fp.add_argument("--interval", type=float, default=30.0)
        fp.add_argument("--minutes", type=float, default=2.0)
        fp.add_argument("--shard-devices", type=int, default=None)
        fp.add_argument("--latency", type=float, default=0.0)
        fp.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "collector.json")
        fa = fp.parse_args(sys.argv[2:])
        root = Path(tempfile.mkdtemp(prefix="navilink-bench-fleet-"))
        os.environ.setdefault("HOME", str(root))
        res = fleet([int(x) for x in fa.ramp.split(",")], fa.interval, fa.minutes, fa.shard_devices,
                    fa.latency, root)
        fa.out.parent.mkdir(parents=True, exist_ok=True)
        fa.out.write_text(json.dumps(res, indent=2) + "\n")
        print(json.dumps(res, indent=2))
        return
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
