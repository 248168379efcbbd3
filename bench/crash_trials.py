"""Crash-safety trials for the store: kill -9 a writer at random moments, then check the data.

    .venv/bin/python bench/crash_trials.py --trials 30 [--dir DIR] [--seed 1]

Each trial starts a writer process on the same data directory (so it also replays what the
previous victim left), lets it append/flush/compact/bulk-write at random for a random time and
kills it with SIGKILL. After every kill: every Parquet file must be readable; after reopening the
store (replay): no duplicate status keys, no duplicate energy days, and every row whose append had
returned (the writer logs these "acks" after each call) is in Parquet. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests/fixtures/navilink-capture/status_response_heatpump_running.json"
MACS = ("aabbccddeeff", "001122334455", "a0b1c2d3e4f5")
BASE = datetime(2026, 11, 20, tzinfo=UTC)


def writer(data: Path, ack_path: Path, seed: int) -> None:
    """Run until killed: random store operations, logging every acknowledged row."""
    import polars as pl

    from navilink_etl.collect.store import Store
    from navilink_etl.status import parse_status, status_row

    rng = random.Random(seed)
    msg = json.loads(FIXTURE.read_text())
    ack = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def note(lines: list[str]) -> None:
        if lines:
            os.write(ack, ("\n".join(lines) + "\n").encode())

    def make_rows(n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            mac = rng.choice(MACS)
            msg["response"]["macAddress"] = mac
            msg["response"]["status"]["currentInstPower"] = rng.randint(0, 5500)
            at = BASE + timedelta(seconds=rng.randint(0, 3 * 86_400), microseconds=rng.randint(0, 999_999))
            out.append(status_row(parse_status(msg), received_at=at, source="crash-trial"))
        return out

    def key(r: dict[str, Any]) -> str:
        return f"s|{r['device']}|{r['received_at'].isoformat()}|{r['content_hash']}"

    store = Store(data)
    print("ready", flush=True)
    acked: list[dict[str, Any]] = []
    while True:
        op = rng.random()
        if op < 0.60:
            rows = make_rows(rng.randint(1, 30))
            if acked and rng.random() < 0.3:
                rows += rng.sample(acked, min(len(acked), 5))  # re-deliveries
            store.append_status(rows)
            note([key(r) for r in rows])
            acked.extend(rows[:10])
        elif op < 0.70:
            store.flush()
        elif op < 0.75:
            store.compact(min_files=2)
        elif op < 0.85:
            rows = make_rows(rng.randint(20, 200))
            if acked:
                rows += rng.sample(acked, min(len(acked), 20))
            store.write_status_frame(pl.DataFrame(rows))
            note([key(r) for r in rows])
        elif op < 0.93:
            mac, d = rng.choice(MACS), date(2026, 11, rng.randint(1, 28))
            fetched = datetime.now(UTC)
            store.append_energy([dict(device=mac, day=d, hp_wh=rng.randint(0, 9000), he_wh=0,
                                      hp_h=1, he_h=0, fetched_at=fetched, source="crash-trial")])
            note([f"e|{mac}|{d.isoformat()}"])
        else:
            detail = f"trial-{seed}-{rng.random():.12f}"
            store.append_event("trial", detail=detail, device=rng.choice(MACS))
            note([f"v|{detail}"])


def check(data: Path, ack_path: Path) -> dict[str, Any]:
    """Verify the data directory after a kill; returns counts and the list of problems found."""
    import polars as pl

    from navilink_etl.collect.store import Store, scan_dataset

    problems: list[str] = []
    files = list(data.glob("**/*.parquet"))
    for f in files:
        try:
            pl.read_parquet(f)
        except Exception as exc:  # a torn file is exactly what this looks for
            problems.append(f"unreadable before replay: {f}: {exc}")
    pre = scan_dataset(data, "status").select("device", "received_at", "content_hash").collect()
    pre_dups = pre.height - pre.unique().height
    with Store(data):  # replay
        pass
    for f in data.glob("**/*.parquet"):
        try:
            pl.read_parquet(f)
        except Exception as exc:
            problems.append(f"unreadable after replay: {f}: {exc}")
    st = scan_dataset(data, "status").select("device", "received_at", "content_hash").collect()
    if st.height != st.unique().height:
        problems.append(f"{st.height - st.unique().height} duplicate status keys after replay")
    stored = {f"s|{d}|{t.isoformat()}|{h}" for d, t, h in st.iter_rows()}
    en = scan_dataset(data, "energy").select("device", "day").collect()
    if en.height != en.unique().height:
        problems.append("duplicate energy (device, day) after replay")
    stored |= {f"e|{d}|{day.isoformat()}" for d, day in en.iter_rows()}
    ev = scan_dataset(data, "events").select("detail").collect()
    stored |= {f"v|{x}" for (x,) in ev.iter_rows()}
    acked = set(ack_path.read_text().split()) if ack_path.exists() else set()
    lost = acked - stored
    if lost:
        problems.append(f"{len(lost)} acknowledged rows lost, e.g. {sorted(lost)[:3]}")
    return {"files": len(files), "status_rows": st.height, "acked": len(acked),
            "pre_replay_duplicates": pre_dups, "problems": problems}


def run_trials(n: int, data: Path, *, seed: int = 1, max_run_s: float = 1.5) -> dict[str, Any]:
    rng = random.Random(seed)
    ack = data.parent / (data.name + ".acks")
    results = []
    t_start = time.monotonic()
    for i in range(n):
        proc = subprocess.Popen([sys.executable, __file__, "--writer", str(data), str(ack),
                                 str(seed * 1000 + i)], stdout=subprocess.PIPE, cwd=ROOT)
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, max_run_s))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        r = check(data, ack)
        r.update(trial=i, ready=ready, exit=proc.returncode)
        if proc.returncode != -signal.SIGKILL:
            r["problems"].append(f"writer exited by itself with {proc.returncode}")
        results.append(r)
    bad = [r for r in results if r["problems"]]
    return {"trials": n, "failed_trials": len(bad), "problems": [p for r in bad for p in r["problems"]],
            "final_status_rows": results[-1]["status_rows"] if results else 0,
            "acked_rows": results[-1]["acked"] if results else 0,
            "kills_leaving_visible_duplicates_until_restart":
                sum(1 for r in results if r["pre_replay_duplicates"]),
            "seconds": round(time.monotonic() - t_start, 1)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        sys.path.insert(0, str(ROOT))
        writer(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    base = a.dir or Path(tempfile.mkdtemp(prefix="navilink-crash-"))
    out = run_trials(a.trials, base / "data", seed=a.seed)
    print(json.dumps(out, indent=2))
    sys.exit(1 if out["failed_trials"] else 0)


if __name__ == "__main__":
    main()
