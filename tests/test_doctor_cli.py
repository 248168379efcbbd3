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
    monkeypatch.setenv("NAVILINK_POLLING_INTERVAL", "120")
    result = runner.invoke(app, ["doctor"])
    return result.exit_code, result.stdout


@pytest.mark.parametrize(("end_h", "code", "severity"), [
    (None, 2, "ERROR"), (30, 1, "WARNING"),
])
def test_error_code_drives_the_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           end_h: float | None, code: int, severity: str) -> None:
    start = START + timedelta(hours=26)
    end = None if end_h is None else START + timedelta(hours=end_h)
    simulate(tmp_path / "data", days=2, interval_s=120, seed=7, start=START, ems_tz=TZ,
             faults=[Fault("error_code", start, end, code=799)])
    status, out = _doctor(tmp_path / "data", monkeypatch)
    assert status == code, out
    assert f"[{severity}] error_code" in out and "E799 (water leak detected)" in out


def test_healthy_data_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    simulate(tmp_path / "data", days=2, interval_s=120, seed=8, start=START, ems_tz=TZ)
    status, out = _doctor(tmp_path / "data", monkeypatch)
    assert status == 0 and "no findings" in out


def test_no_data_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status, out = _doctor(tmp_path / "empty", monkeypatch)
    assert status == 0 and "navilink-etl simulate" in out


def test_help() -> None:
    result = runner.invoke(app, ["doctor", "--help"])
    assert result.exit_code == 0 and "Exit status" in result.stdout
