"""Every command answers --help; configuration errors become a clear message and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from navilink_etl.cli import app

runner = CliRunner()


def _all_commands() -> list[list[str]]:
    root = get_command(app)
    paths: list[list[str]] = []

    def walk(cmd: Any, prefix: list[str]) -> None:
        paths.append(prefix)
        if getattr(cmd, "commands", None):
            for name, sub in cmd.commands.items():
                walk(sub, [*prefix, name])

    walk(root, [])
    return paths


def test_the_expected_commands_exist() -> None:
    names = {" ".join(p) for p in _all_commands()}
    for expected in ("collect", "sim serve", "simulate", "import", "export", "refresh", "views", "query", "report", "status"):
        assert expected in names


@pytest.mark.parametrize("path", _all_commands(), ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # a real sentence of help, not just the usage line
    assert len(result.output.splitlines()) > 3


def test_bad_configuration_exits_2_with_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAVILINK_TIMEZONE", "Nowhere/Land")
    result = runner.invoke(app, ["views"])
    assert result.exit_code == 2
    assert "NAVILINK_TIMEZONE" in result.output


def test_status_without_account_says_the_heaters_are_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["status", "--devices", "1"])
    assert result.exit_code == 0, result.output
    assert "No NAVILINK_EMAIL set" in result.output and "SIMULATED" in result.output
    assert result.output.count("(simulated): tank") == 1


def test_collect_names_a_bad_refresh_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAVILINK_REFRESH_MINUTES", "-1")
    result = runner.invoke(app, ["collect", "--duration", "0.01"])
    assert result.exit_code == 2
    assert "NAVILINK_REFRESH_MINUTES" in result.output


def test_the_collector_package_does_not_import_the_simulator() -> None:
    import subprocess
    import sys

    code = ("import sys, navilink_etl.collect.run, navilink_etl.collect.scheduler, navilink_etl.collect.ingest; "
            "print(sorted(m for m in sys.modules if m.startswith('navilink_etl.sim')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_collect_without_credentials_runs_the_embedded_default_and_refreshes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import duckdb

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAVILINK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NAVILINK_REFRESH_MINUTES", "0.02")  # 1.2 s: at least one refresh in the run
    result = runner.invoke(app, ["collect", "--duration", "0.12", "--devices", "1", "--speed", "600"])
    assert result.exit_code == 0, result.output
    log = (tmp_path / "data" / "logs" / "collector.log").read_text()
    assert "EMBEDDED SIMULATOR" in log and "warehouse marts refreshed" in log
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    assert con.sql("select count(*) from information_schema.tables").fetchall()[0][0] > 0
