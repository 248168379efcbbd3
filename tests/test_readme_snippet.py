"""The original NaviLink library's Basic Usage snippet, and the README's "Coming from the original
NaviLink library" example, run unchanged against `navilink-etl sim serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .serve_helpers import start_serve

SNIPPET = '''
import asyncio
from navilink_etl import NaviLinkClient, NaviLinkConfig

async def main():
    # Load credentials from .env file
    config = NaviLinkConfig.from_environment()

    async with NaviLinkClient(config=config) as client:
        # Connect to your water heater
        await client.authenticate(config.email, config.password)
        devices = await client.get_devices()
        device = devices[0]  # Your water heater

        # Get current status
        status = await device.get_status()
        print(f"Tank Level: {status.dhw_charge_per}%")
        print(f"Temperature: {status.dhw_temperature}°F")
        print(f"Power Usage: {status.current_inst_power}W")

        # Control your water heater
        await device.set_temperature(120)  # Set to 120°F
        await device.set_dhw_mode(1)       # Set DHW mode

asyncio.run(main())
'''


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in the README."""
    text = README.read_text(encoding="utf-8")
    rest = text[text.index(heading):]
    m = re.search(r"```python\n(.*?)```", rest, re.S)
    assert m, f"no python block under {heading!r}"
    return m.group(1)


def test_original_snippet_runs_unchanged_against_sim_serve(tmp_path: Path) -> None:
    proc, exports = start_serve()
    try:
        assert {"NAVILINK_EMAIL", "NAVILINK_PASSWORD", "NAVILINK_REST_BASE_URL", "NAVILINK_IOT_PORT",
                "NAVILINK_CA_FILE"} <= set(exports)
        assert all("127.0.0.1" in v or v == "localhost" for k, v in exports.items()
                   if k in ("NAVILINK_REST_BASE_URL", "NAVILINK_IOT_ENDPOINT"))
        script = tmp_path / "basic_usage.py"
        script.write_text(SNIPPET)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAVILINK_")} | exports
        run = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr[-3000:]
        lines = run.stdout.splitlines()
        assert re.fullmatch(r"Tank Level: \d{1,3}%", lines[0])
        temp = float(re.fullmatch(r"Temperature: ([\d.]+)°F", lines[1]).group(1))  # type: ignore[union-attr]
        assert 90 <= temp <= 160
        assert re.fullmatch(r"Power Usage: \d+W", lines[2])
        assert exports["NAVILINK_PASSWORD"] not in run.stdout + run.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_readme_original_library_example_runs_against_sim_serve(tmp_path: Path) -> None:
    code = readme_block("## Coming from the original NaviLink library")
    assert "from navilink import NaviLinkClient, NaviLinkConfig" in code
    proc, exports = start_serve()
    try:
        script = tmp_path / "coming_from_navilink.py"
        script.write_text(code, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAVILINK_")} | exports
        run = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=90)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert re.fullmatch(r"Device: \S.* \(MAC: [0-9a-f]{12}\) online: True", lines[0])
    assert re.fullmatch(r"DHW Charge: \d{1,3}%  Temperature: [\d.]+°F", lines[1])
    assert re.fullmatch(r"Operation Mode: (0|32|64|96) \((standby|heat_pump|element|heat_pump_and_element)\)  "
                        r"Power: \d+W", lines[2])
    assert exports["NAVILINK_PASSWORD"] not in run.stdout + run.stderr
