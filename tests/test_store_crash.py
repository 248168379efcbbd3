"""Crash safety: a writer process is killed with SIGKILL at random moments (bench/crash_trials.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "crash_trials.py"


def trials_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_trials", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_kill_9_a_few_times_loses_nothing_acknowledged(tmp_path: Path) -> None:
    out = trials_module().run_trials(4, tmp_path / "data", seed=7, max_run_s=0.8)
    assert out["problems"] == [] and out["failed_trials"] == 0
    assert out["acked_rows"] > 0 and out["final_status_rows"] > 0


@pytest.mark.slow
def test_kill_9_twenty_five_times_loses_nothing_acknowledged(tmp_path: Path) -> None:
    out = trials_module().run_trials(25, tmp_path / "data", seed=11)
    assert out["problems"] == [] and out["failed_trials"] == 0
    assert out["acked_rows"] > 1000
