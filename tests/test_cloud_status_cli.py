"""``navilink-etl status`` against ``navilink-etl sim serve --hostile``: good devices are printed,
malformed device-list entries listed on stderr, no traceback."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path


def test_status_prints_good_devices_and_lists_skipped_entries(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAVILINK_")} | {"TMPDIR": str(tmp_path)}
    serve = subprocess.Popen([sys.executable, "-m", "navilink_etl", "sim", "serve", "--hostile", "--devices", "2",
                              "--latency", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert serve.stdout is not None
        exports: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "NAVILINK_CA_FILE" not in exports:
            line = serve.stdout.readline()
            if not line:
                break
            key, _, value = line.removeprefix("export ").strip().partition("=")
            exports[key] = shlex.split(value)[0] if value else ""
        run_env = env | exports | {"NAVILINK_TIMEZONE": "UTC"}
        out = subprocess.run([sys.executable, "-m", "navilink_etl", "status"], capture_output=True, text=True,
                             env=run_env, timeout=120, cwd=tmp_path)
        bad = subprocess.run([sys.executable, "-m", "navilink_etl", "status", "--device", "../../x"],
                             capture_output=True, text=True, env=run_env, timeout=60, cwd=tmp_path)
    finally:
        serve.terminate()
        serve.communicate(timeout=30)
    assert out.returncode == 0, out.stderr[-1500:]
    assert len([x for x in out.stdout.splitlines() if "tank" in x]) == 2
    assert out.stderr.count("skipped device-list entry") == 4 and "escaped_dir" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert bad.returncode == 2 and "is not a MAC" in bad.stderr
