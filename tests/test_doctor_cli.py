"""`navilink-etl doctor`: findings per device and the exit status (0 none, 1 warning, 2 error)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from navilink_etl.cli import app
from navilink_etl.sim.faults import Fault
from navilink_etl.sim.simulate import simulate
from tests.doctor_data import START, TZ

runner = CliRunner()


def _doctor(data: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("NAVILINK_DATA_DIR", str(data))
    monkeypatch.setenv("NAVILINK_TIMEZONE", TZ)
    monkeypatch.setenv("NAVILINK_POLLING_INTERVAL", "300")
    result = runner.invoke(app, ["doctor"])
    return result.exit_code, result.stdout


def test_error_codes_drive_the_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    # one heater showed E799 for 4 h and cleared: a warning
    simulate(data, days=2, interval_s=300, seed=7, start=START, ems_tz=TZ,
             faults=[Fault("error_code", START + timedelta(hours=26), START + timedelta(hours=30),
                           code=799, sub_code=3)])
    status, out = _doctor(data, monkeypatch)
    assert status == 1, out
    assert "[WARNING] error_code" in out
    assert "E799 (water leak detected) shown and cleared (sub-code 3;" in out
    # a second heater shows E940 now: an error, and the first one is still listed
    simulate(data, days=2, interval_s=300, seed=9, start=START, ems_tz=TZ,
             faults=[Fault("error_code", START + timedelta(hours=40), code=940)])
    status, out = _doctor(data, monkeypatch)
    assert status == 2, out
    assert "[ERROR] error_code" in out and "E940 (refrigerant line blockage) shown now" in out
    assert out.count("finding(s)") == 2


def test_healthy_data_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    simulate(tmp_path / "data", days=2, interval_s=300, seed=8, start=START, ems_tz=TZ)
    status, out = _doctor(tmp_path / "data", monkeypatch)
    assert status == 0 and "no findings" in out


def test_no_data_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status, out = _doctor(tmp_path / "empty", monkeypatch)
    assert status == 0 and "navilink-etl simulate" in out


def test_help() -> None:
    result = runner.invoke(app, ["doctor", "--help"])
    assert result.exit_code == 0 and "Exit status" in result.stdout
