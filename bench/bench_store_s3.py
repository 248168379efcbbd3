"""The store on an S3 endpoint (moto's server on 127.0.0.1) versus local disk, in the same run.

For each backend: the collector's pattern (every poll, one status row per heater is spooled and
flushed), then a compaction of every partition. Figures: bytes per stored sample after
compaction, flush latency (median and p95 per flush of one poll of every heater), compaction time;
then one simulated heater-day at 30 s (realistic samples) written by the bulk path: bytes per
sample and write time. Each S3 figure also as a ratio to the local one.
Writes bench/results/store_s3.json.

    .venv/bin/python bench/bench_store_s3.py [--devices 20] [--polls 120]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from navilink_etl.collect.store import Store
from navilink_etl.config import load_config
from tests.s3_helpers import MotoS3
from tests.test_store import rows_for

RESULTS = Path(__file__).resolve().parent / "results" / "store_s3.json"


def _macs(n: int) -> list[str]:
    return [f"0000{i:08x}" for i in range(n)]


def run_backend(store: Store, devices: int, polls: int) -> dict[str, Any]:
    macs = _macs(devices)
    t0 = datetime(2026, 6, 1, 10, tzinfo=UTC)
    # rows prepared up front: the timings are the store's, not the row builder's
    polls_rows = [[r for mac in macs for r in rows_for(mac, 1, start=t0 + timedelta(seconds=30 * p))]
                  for p in range(polls)]
    lat = []
    for rows in polls_rows:
        store.append_status(rows)
        t = time.perf_counter()
        store.flush()
        lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    merged = store.compact()
    compact_s = time.perf_counter() - t
    return {"flush_ms_median": statistics.median(lat) * 1e3,
            "flush_ms_p95": sorted(lat)[int(0.95 * (len(lat) - 1))] * 1e3,
            "compaction_s": compact_s, "partitions_compacted": merged,
            "rows": devices * polls}


def simulated_day(tmp: Path, cfg: Any) -> dict[str, dict[str, float]]:
    """One simulated heater-day at 30 s: the same frame through the bulk path, both backends."""
    import polars as pl

    from navilink_etl.sim.simulate import simulate

    sim = tmp / "sim"
    simulate(sim, days=1, devices=1, interval_s=30, start=datetime(2026, 1, 5, tzinfo=UTC), seed=3)
    frame = pl.concat([pl.read_parquet(f) for f in sorted(sim.glob("status/**/*.parquet"))])
    out = {}
    for name in ("local", "s3"):
        if name == "local":
            store = Store(tmp / "bulk")
        else:
            store = Store(cfg.location, spool_dir=tmp / "bulk-spool", retire_after=timedelta(0))
        with store:
            t = time.perf_counter()
            n = store.write_status_frame(frame)
            secs = time.perf_counter() - t
        if name == "local":
            size = stored_bytes_local(tmp / "bulk")
        else:
            fs = cfg.location.fs
            size = sum(int(v["size"]) for k, v in fs.find(cfg.location.join("status"), detail=True).items()
                       if k.endswith(".parquet"))
        out[name] = {"samples": n, "bytes": size, "bytes_per_sample": size / n, "write_s": secs}
    return out


def stored_bytes_local(root: Path) -> int:
    return sum(f.stat().st_size for f in (root / "status").glob("**/*.parquet"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=20, help="heaters polled each round")
    ap.add_argument("--polls", type=int, default=120, help="polls (one flush each)")
    args = ap.parse_args()
    server = MotoS3()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bucket = server.bucket("bench")
            os.environ.update(server.env())
            cfg = load_config(data_dir=f"s3://{bucket}/store")
            local_dir = Path(tmp) / "local"
            with Store(local_dir) as local:
                lo = run_backend(local, args.devices, args.polls)
            lo["bytes"] = stored_bytes_local(local_dir)
            with Store(cfg.location, spool_dir=Path(tmp) / "spool", retire_after=timedelta(0)) as s3:
                re_ = run_backend(s3, args.devices, args.polls)
            fs = cfg.location.fs
            re_["bytes"] = sum(int(v["size"]) for k, v in fs.find(f"{bucket}/store/status", detail=True).items()
                               if k.endswith(".parquet"))
            day = simulated_day(Path(tmp), load_config(data_dir=f"s3://{bucket}/day"))
    finally:
        server.stop()
    out: dict[str, Any] = {"devices": args.devices, "polls": args.polls,
                           "endpoint": "moto server on 127.0.0.1 (python -m moto.server)",
                           "local": lo, "s3": re_, "simulated_day": day}
    for b in (lo, re_):
        b["bytes_per_sample"] = b["bytes"] / b["rows"]
    out["ratio_s3_to_local"] = {k: (re_[k] / lo[k] if lo[k] else None)
                                for k in ("bytes_per_sample", "flush_ms_median", "flush_ms_p95",
                                          "compaction_s")}
    out["ratio_s3_to_local"]["simulated_day_bytes_per_sample"] = (
        day["s3"]["bytes_per_sample"] / day["local"]["bytes_per_sample"])
    out["ratio_s3_to_local"]["simulated_day_write_s"] = day["s3"]["write_s"] / day["local"]["write_s"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
