"""Status parser throughput on one core: wire bytes -> DeviceStatus (-> storage row).

Run: .venv/bin/python bench/bench_parser.py [--seconds 2]. The collector needs far less than
20,000 messages/s; this shows the headroom and catches regressions.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from navilink_etl.status import parse_status, status_row

CAPTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "navilink-capture"
FILES = ("status_response_heatpump_running.json", "status_response_standby_idle.json",
         "status_ack_set_high_demand_electric_element_running.json",
         "status_push_heat_source_change_67108892.json")
TARGET_PER_S = 20_000


def _payloads() -> list[bytes]:
    out = []
    for name in FILES:
        msg = json.loads((CAPTURE / name).read_text())
        out.append(orjson.dumps(msg))
        # the newer firmware's payload: 12 more keys
        newer = dict(msg, response=dict(msg["response"], status=dict(msg["response"]["status"])))
        newer["response"]["status"].update({"heatMinOpTemperature": 100, "recircOperationMode": 0})
        out.append(orjson.dumps(newer))
    return out


def _run(payloads: list[bytes], seconds: float, with_row: bool) -> tuple[int, float, float]:
    """(messages, wall s, CPU s): CPU time is the single-core figure even on a busy machine."""
    now = datetime.now(UTC)
    n, start, cpu0 = 0, time.perf_counter(), time.process_time()
    deadline = start + seconds
    while True:
        for p in payloads:
            st = parse_status(p, received_at=now)
            if with_row:
                status_row(st, received_at=now, source="bench")
        n += len(payloads)
        if time.perf_counter() >= deadline:
            return n, time.perf_counter() - start, time.process_time() - cpu0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=2.0, help="time per case (default 2)")
    args = ap.parse_args()
    payloads = _payloads()
    _run(payloads, 0.2, True)  # warm-up
    print(f"{'case':<30}{'messages':>10}{'wall s':>8}{'cpu s':>7}{'msg/cpu-s':>11}{'us/msg':>8}")
    rates = []
    for label, with_row in (("parse_status", False), ("parse_status + status_row", True)):
        n, wall, cpu = _run(payloads, args.seconds, with_row)
        rate = n / cpu
        rates.append(rate)
        print(f"{label:<30}{n:>10,}{wall:>8.2f}{cpu:>7.2f}{rate:>11,.0f}{1e6 / rate:>8.1f}")
    ok = min(rates) > TARGET_PER_S
    print(f"target > {TARGET_PER_S:,} msg per CPU-second on one core: {'OK' if ok else 'TOO SLOW'} "
          f"(load average {os.getloadavg()[0]:.2f})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
