"""``navilink-etl sim serve`` removes its temporary CA folder on every way out: SIGTERM, SIGINT, an
error, cancellation; folders left by killed processes are swept on the next start."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from navilink_etl.sim.broker import CA_DIR_PREFIX, FakeBroker, sweep_stale_ca_dirs
from navilink_etl.sim.cloud import FakeCloud


def _ca_dirs(root: Path) -> list[Path]:
    return list(root.glob(f"{CA_DIR_PREFIX}*"))


def _serve(tmp: Path, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "navilink_etl", "sim", "serve", "--latency", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("NAVILINK_CA_FILE" in x for x in lines):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    return proc, lines


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sim_serve_removes_its_ca_folder_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    proc, lines = _serve(tmp_path)
    try:
        assert any("NAVILINK_CA_FILE" in x for x in lines), lines
        ca_dirs = list(tmp_path.glob(f"{CA_DIR_PREFIX}*"))
        assert len(ca_dirs) == 1 and (ca_dirs[0] / "fake-navilink-ca.pem").is_file()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-1000:]
    assert "Traceback" not in err
    assert list(tmp_path.glob(f"{CA_DIR_PREFIX}*")) == []


def test_sim_serve_hostile_starts_and_stops_cleanly(tmp_path: Path) -> None:
    proc, lines = _serve(tmp_path, "--hostile")
    try:
        assert any("NAVILINK_REST_BASE_URL" in x for x in lines)
        proc.terminate()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and list(tmp_path.glob(f"{CA_DIR_PREFIX}*")) == []


def test_the_ca_folder_of_a_killed_process_is_swept(tmp_path: Path) -> None:
    proc, _ = _serve(tmp_path)
    proc.kill()  # SIGKILL: no handler can run
    proc.wait(timeout=30)
    assert len(list(tmp_path.glob(f"{CA_DIR_PREFIX}{proc.pid}-*"))) == 1
    live = tmp_path / f"{CA_DIR_PREFIX}{os.getpid()}-mine"
    live.mkdir()
    assert sweep_stale_ca_dirs(tmp_path) == 1
    assert list(tmp_path.glob(f"{CA_DIR_PREFIX}*")) == [live]  # a live process's folder is kept


async def test_the_ca_folder_goes_on_cancellation_and_on_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR

    async def hold() -> None:
        async with FakeCloud(n_devices=1):
            await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    for _ in range(200):
        if _ca_dirs(tmp_path):
            break
        await asyncio.sleep(0.05)
    assert _ca_dirs(tmp_path)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert _ca_dirs(tmp_path) == []

    broker = FakeBroker(lambda akid: None)
    await broker.start()

    async def broken_shutdown() -> None:
        raise RuntimeError("shutdown failed")

    inner = broker._broker
    assert inner is not None
    monkeypatch.setattr(inner, "shutdown", broken_shutdown)
    with pytest.raises(RuntimeError):
        await broker.stop()
    assert _ca_dirs(tmp_path) == []
    monkeypatch.undo()
    await inner.shutdown()


def test_the_embedded_default_removes_its_ca_folder_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAVILINK_")}
    env |= {"TMPDIR": str(tmp_path), "NAVILINK_DATA_DIR": str(tmp_path / "data"), "NAVILINK_TIMEZONE": "UTC"}
    proc = subprocess.Popen([sys.executable, "-m", "navilink_etl", "collect", "--devices", "1", "--duration", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(tmp_path.glob(f"{CA_DIR_PREFIX}*")):
            time.sleep(0.1)
        assert list(tmp_path.glob(f"{CA_DIR_PREFIX}*")), "the embedded fake cloud never started"
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-1500:]
    assert list(tmp_path.glob(f"{CA_DIR_PREFIX}*")) == []
