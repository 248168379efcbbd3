"""ENOSPC on a real, tiny filesystem: a writer appends (status, events, quarantine) and flushes
until the disk is full, keeps trying for a while, then space returns; nothing acknowledged may be
lost or duplicated and memory must stay flat while the disk is full. Prints a JSON summary.

    .venv/bin/python bench/enospc_trials.py [--size-mb 16] [--full-attempts 500]

Mounts a tmpfs of ``--size-mb`` and later grows it (needs root). tests/test_store_enospc.py covers
the same at the write seams, without root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIXTURE = ROOT / "tests/fixtures/navilink-capture/status_response_heatpump_running.json"
MACS = ("aabbccddeeff", "001122334455")
T0 = datetime(2026, 11, 20, tzinfo=UTC)


def run(data: Path, full_attempts: int) -> dict[str, Any]:
    from navilink_etl.collect.store import DiskFullError, Store, scan_dataset
    from navilink_etl.status import parse_status, status_row

    msg = json.loads(FIXTURE.read_text())

    def rows(i: int) -> list[dict[str, Any]]:
        out = []
        for j in range(50):  # record i holds rows 50i .. 50i+49
            n = i * 50 + j
            msg["response"]["status"]["currentInstPower"] = n
            msg["response"]["status"]["wifiRssi"] = -(n % 90)
            out.append(status_row(parse_status(msg), received_at=T0 + timedelta(seconds=5 * n),
                                  source="enospc", device=MACS[n % 2]))
        return out

    out: dict[str, Any] = {"append_disk_full": 0, "flush_disk_full": 0, "event_disk_full": 0,
                           "quarantine_disk_full": 0}
    acked: set[int] = set()
    refused: list[int] = []
    s = Store(data)
    i = 0

    def append(k: int) -> None:
        try:
            s.append_status(rows(k))
            acked.update(range(k * 50, k * 50 + 50))
            if k in refused:
                refused.remove(k)
        except DiskFullError as exc:
            out["append_disk_full"] += 1
            out["last_message"] = str(exc)
            if k not in refused:
                refused.append(k)  # the caller keeps it and sends it again later

    t0 = time.monotonic()
    for i in range(20):  # 1. some rows reach Parquet
        append(i)
        s.flush()
    out["rows_in_parquet_before_full"] = len(acked)
    while out["append_disk_full"] == 0:  # 2. spool without flushing until the disk is full
        i += 1
        append(i)
    out["seconds_to_fill"] = round(time.monotonic() - t0, 1)
    out["acked_rows_when_full"] = len(acked)
    out["pending_when_full"] = s.pending()

    def attempt(k: int) -> None:  # 3. the disk stays full: every kind of write is tried
        append(refused[0] if refused else i + 1)
        for kind, call in (("flush_disk_full", s.flush),
                           ("event_disk_full", lambda: s.append_event("x", detail=str(k))),
                           ("quarantine_disk_full", lambda: s.quarantine(reason=str(k), raw="{", source="b"))):
            try:
                call()
            except DiskFullError as exc:
                out[kind] += 1
                out["last_message"] = str(exc)

    for k in range(100):
        attempt(k)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for k in range(full_attempts):
        attempt(k)
    out["memory_growth_bytes_over_full_attempts"] = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    out["full_attempts"] = full_attempts
    out["pending_after_full_attempts"] = s.pending()
    return {"out": out, "acked": acked, "refused": refused, "store": s, "rows": rows,
            "scan": scan_dataset}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=16)
    ap.add_argument("--full-attempts", type=int, default=500)
    args = ap.parse_args()
    mount = Path(tempfile.mkdtemp(prefix="navilink-enospc-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size_mb}m", "tmpfs", str(mount)], check=True)
    try:
        res = run(mount / "data", args.full_attempts)
        out, s = res["out"], res["store"]
        t0 = time.monotonic()  # 3. space returns: the filesystem grows, as when an operator frees some
        subprocess.run(["mount", "-o", f"remount,size={args.size_mb * 4}m", str(mount)], check=True)
        s.flush()
        for i in res["refused"]:  # the caller re-sends what was refused
            s.append_status(res["rows"](i))
            res["acked"].update(range(i * 50, i * 50 + 50))
        s.flush()
        s.close()
        out["seconds_to_recover"] = round(time.monotonic() - t0, 2)
        df = res["scan"](mount / "data", "status").collect()
        got = df.get_column("currentInstPower").to_list()
        out.update(acked_rows=len(res["acked"]), stored_rows=len(got),
                   lost=len(res["acked"] - set(got)), duplicates=len(got) - len(set(got)),
                   stray_tmp=len(list((mount / "data").rglob("*.tmp"))))
        print(json.dumps(out, indent=2))
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)
        shutil.rmtree(mount, ignore_errors=True)


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # unmount on the way out


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    signal.signal(signal.SIGTERM, _stop)
    main()
