"""Test helper: ``navilink-etl sim serve`` in a subprocess, and the ``export`` lines it prints."""

from __future__ import annotations

import re
import subprocess
import sys
import time


def start_serve(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start one simulated heater behind the fake cloud; return the process and its exports."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "navilink_etl", "sim", "serve", "--devices", "1", "--latency", "0.05"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    exports: dict[str, str] = {}
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    while time.monotonic() < deadline and "NAVILINK_POLLING_INTERVAL" not in exports:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.fullmatch(r"export (NAVILINK_[A-Z_]+)=(.*)", line.strip())
        assert m, f"serve printed a line that is not a shell export: {line!r}"
        exports[m.group(1)] = m.group(2)
    return proc, exports
