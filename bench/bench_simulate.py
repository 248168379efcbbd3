"""Bulk simulator benchmark: device-days at a 30 s poll into a fresh Parquet store, and the
what-if twin's 7-day replays (the simulator's plant and controller driven by a fitted twin).

    .venv/bin/python bench/bench_simulate.py [--days 365] [--devices 1] [--interval 30] [--loss 0.05]
    .venv/bin/python bench/bench_simulate.py --reference /tmp/ref [--repeat 3] [--replay]

Prints one JSON object: samples written, samples/s, wall seconds, CPU seconds of the simulating
process and of the Parquet writer process (they run in parallel; on a busy machine CPU is the
steadier figure), peak RSS of each, and Parquet bytes per sample. Target: one device-year at 30 s
well under a minute.

``--reference DIR``: a copy of the code to compare with (a checkout with ``navilink_etl/`` at its
top, e.g. ``git worktree add /tmp/ref main``). Every figure is then measured in fresh processes for
this tree and for DIR, alternating, ``--repeat`` times each; the fastest run of each counts, and
``ratio`` gives this tree's figure over DIR's (below 1: faster). ``--replay`` adds the twin: an
8-day household is simulated, refreshed and fitted once (with this tree), then its backcast and
three scenario replays (7 days each) are timed in both trees. Results go to
``bench/results/simulate.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMES = ("wall_s", "cpu_s_simulating", "cpu_s_writer_process", "cpu_s", "wall_s_per_replay",
         "whatif_replays_s")


def _simulate(args: argparse.Namespace) -> dict[str, Any]:
    from navilink_etl.sim.simulate import simulate

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
    return {
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


def _twin_world(path: Path) -> None:
    """Simulate, refresh and fit an 8-day household; pickle the twin's params and inputs."""
    from navilink_etl import warehouse
    from navilink_etl.config import NaviLinkConfig
    from navilink_etl.sim.simulate import simulate
    from navilink_etl.twin import Scenario, whatif

    with tempfile.TemporaryDirectory(prefix="bench_twin_") as tmp:
        data = Path(tmp)
        tz = "America/Chicago"
        simulate(data, devices=1, days=8, interval_s=30, seed=22, start=datetime(2026, 1, 5, tzinfo=UTC),
                 ems_tz=tz, setpoint_f=120.0, mode="energy_saver")
        cfg = NaviLinkConfig(data_dir=data, polling_interval=30, timezone=tz)
        warehouse.refresh(cfg)
        res = whatif(cfg, scenarios=[Scenario("setpoint +10", setpoint_f=130.0)])
    with path.open("wb") as f:
        pickle.dump((res.params, res.inputs), f)


def _replay(path: Path) -> dict[str, Any]:
    """The backcast and three scenario replays of the pickled twin, timed."""
    from navilink_etl.protocol import DhwMode
    from navilink_etl.sim.schedule import LoadShift
    from navilink_etl.twin.replay import Settings, replay

    with path.open("rb") as f:
        params, inputs = pickle.load(f)  # noqa: S301 - written by this script a moment ago
    runs = [None, Settings(setpoint_half_c=inputs.settings[-1][1] + 11),
            Settings(mode=int(DhwMode.HEAT_PUMP)), Settings(shift=LoadShift.parse("16:00-21:00", inputs.tz))]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    steps = sum(replay(params, inputs, s).steps.height for s in runs)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"replays": len(runs), "days_each": round((inputs.t1 - inputs.t0) / 86400.0, 2),
            "step_rows": steps, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "wall_s_per_replay": round(wall / len(runs), 3)}


def _report(code: Path, data: Path) -> dict[str, Any]:
    """``bench/bench_report.py`` of tree ``code`` on the simulated year in ``data``: total wall and
    CPU, and the what-if section's replays (its backcast and scenario phases)."""
    import re

    env = dict(os.environ, PYTHONPATH=str(code))
    with tempfile.TemporaryDirectory(prefix="bench_report_out_") as tmp:
        out = subprocess.run([sys.executable, str(code / "bench" / "bench_report.py"), "--data-dir", str(data),
                              "--out", tmp], env=env, capture_output=True, text=True, check=False)
    total = re.search(r"total ([0-9.]+) s wall, ([0-9.]+) s CPU", out.stdout)
    if total is None:
        raise SystemExit(f"bench_report.py with {code} failed:\n{out.stdout}\n{out.stderr}")
    phases = re.findall(r"^\s*([0-9.]+) s  (backcast|scenario: .*)$", out.stdout, re.MULTILINE)
    return {"wall_s": float(total[1]), "cpu_s": float(total[2]),
            "whatif_replays_s": round(sum(float(x) for x, _ in phases), 3), "code": str(code)}


def _in_process(code: Path, what: list[str]) -> dict[str, Any]:
    """Run this script's ``--worker`` for ``what`` with the package from ``code``."""
    env = dict(os.environ, PYTHONPATH=str(code))
    out = subprocess.run([sys.executable, __file__, "--code", str(code), *what], env=env,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmark run with {code} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _compare(what: list[str] | Path, reference: Path, repeat: int, key: str) -> dict[str, Any]:
    """``what``: worker arguments, or the data folder of ``bench_report.py``."""
    best: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        for name, code in (("now", ROOT), ("reference", reference)):
            r = _report(code, what) if isinstance(what, Path) else _in_process(code, what)
            if name not in best or r[key] < best[name][key]:
                best[name] = r
    ratio = {k: round(best["now"][k] / best["reference"][k], 3) for k in TIMES
             if best["reference"].get(k) and k in best["now"]}
    return {"now": best["now"], "reference": best["reference"], "ratio_now_over_reference": ratio}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=365.0)
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--interval", type=float, default=30.0)
    ap.add_argument("--loss", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--location", default="basement")
    ap.add_argument("--reference", type=Path, help="a copy of the code to compare with (see above)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tree with --reference (fastest counts)")
    ap.add_argument("--replay", action="store_true", help="also time the twin's 7-day replays")
    ap.add_argument("--report-data", type=Path, metavar="DIR",
                    help="also time bench/bench_report.py of both trees on this simulated folder "
                         "(made by a first `bench_report.py --data-dir DIR`)")
    ap.add_argument("--no-simulate", action="store_true", help="skip the simulate figure")
    ap.add_argument("--code", type=Path, help=argparse.SUPPRESS)  # worker: the tree to import
    ap.add_argument("--replay-inputs", type=Path, help=argparse.SUPPRESS)  # worker: time replays
    args = ap.parse_args()
    sys.path.insert(0, str(args.code or ROOT))
    if args.code is not None:  # a worker process
        out = _replay(args.replay_inputs) if args.replay_inputs else _simulate(args)
        import navilink_etl

        out["code"] = str(Path(navilink_etl.__file__).parents[1])
        print(json.dumps(out))
        return
    if args.reference is None:
        print(json.dumps(_simulate(args)))
        return
    what = ["--days", str(args.days), "--devices", str(args.devices), "--interval", str(args.interval),
            "--loss", str(args.loss), "--seed", str(args.seed), "--location", args.location]
    result: dict[str, Any] = {"at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "reference": str(args.reference), "repeat": args.repeat}
    if not args.no_simulate:
        result["simulate"] = _compare(what, args.reference.resolve(), args.repeat, "wall_s")
    if args.replay:
        with tempfile.TemporaryDirectory(prefix="bench_replay_") as tmp:
            pkl = Path(tmp) / "twin.pkl"
            _twin_world(pkl)
            result["twin_replay"] = _compare(["--replay-inputs", str(pkl)], args.reference.resolve(),
                                             args.repeat, "wall_s")
    if args.report_data is not None:
        result["report"] = _compare(args.report_data.resolve(), args.reference.resolve(), args.repeat,
                                    "wall_s")
    result["load_average"] = round(os.getloadavg()[0], 2)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "simulate.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
