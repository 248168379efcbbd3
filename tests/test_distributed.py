"""The refresh on a Dask cluster (local processes, an external scheduler + worker pair, a worker
killed mid-build) gives the single-process build's tables, row for row, and its marts/ files."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from distributed import Client
from typer.testing import CliRunner

from navilink_etl import distributed, refresh, warehouse
from navilink_etl.cli import app
from navilink_etl.errors import ConfigurationError

from .marts_helpers import (
    add_last_day,
    assert_same_partitions,
    assert_same_tables,
    config,
    copy_fleet,
    source,
)

DASK = str(Path(sys.executable).with_name("dask"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The single-process builds: (before the last day, after it, incrementally)."""
    src = source(tmp_path_factory)
    base = tmp_path_factory.mktemp("reference")
    before = copy_fleet(src, base / "before")
    warehouse.refresh(config(before))
    after = base / "after"
    shutil.copytree(before, after, ignore=shutil.ignore_patterns(".duckdb"))
    add_last_day(src, after)
    assert not warehouse.refresh(config(after)).full
    return before, after


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_local_workers_equal_one_process_and_survive_a_killed_worker(
        reference: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    before, after = reference
    src = source(tmp_path_factory)
    data = copy_fleet(src, tmp_path / "data")
    with distributed.cluster(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        engine = distributed.DaskEngine(client, batch_bytes=1)  # one device per task
        result = refresh.run(config(data), engine=engine)
        assert result.full and result.devices == 3
        assert sorted(len(r.devices) for r in engine.results) == [1, 1, 1]
        assert len({r.pid for r in engine.results}) == 2  # both workers took a share
        assert_same_tables(data / "warehouse.duckdb", before / "warehouse.duckdb")
        assert_same_partitions(data, before)

        # The new day is refreshed while a worker process running a task is killed (SIGKILL):
        # its nanny starts a new one, the scheduler reschedules the task (which reads the
        # batch's previous rows from marts/, possibly already rewritten by the killed attempt:
        # only rows from the replaced day on change, so it computes the same), the refresh
        # completes with the same tables, and no half-written partition is visible.
        add_last_day(src, data)
        killed = _kill_a_busy_worker(client)
        result = refresh.run(config(data), engine=engine)
        killed.join(timeout=10)
        assert killed.victim is not None, "no task was seen running"
        assert killed.victim not in set(client.run(os.getpid).values())
        client.wait_for_workers(2, timeout=60)  # the nanny started a new worker
    assert not result.full and result.device_days > 0
    assert_same_tables(data / "warehouse.duckdb", after / "warehouse.duckdb")
    assert_same_partitions(data, after)
    assert not [p for p in (data / "marts").rglob("*") if p.is_file() and p.name != "part-0.parquet"]


class _Killer(threading.Thread):
    def __init__(self, client: Any) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.pids: dict[str, int] = client.run(os.getpid)
        self.victim: int | None = None

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [w for w, keys in self.client.processing().items() if keys]
            if busy:
                time.sleep(0.1)  # inside the task: DuckDB is building the batch
                self.victim = self.pids[busy[0]]
                os.kill(self.victim, signal.SIGKILL)
                return
            time.sleep(0.02)


def _kill_a_busy_worker(client: Any) -> _Killer:
    killer = _Killer(client)
    killer.start()
    return killer


def test_views_with_one_local_worker(reference: tuple[Path, Path],
                                     tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    before, _after = reference
    data = copy_fleet(source(tmp_path_factory), tmp_path / "data")
    monkeypatch.setenv("NAVILINK_DATA_DIR", str(data))
    monkeypatch.setenv("NAVILINK_TIMEZONE", "America/Chicago")
    monkeypatch.setenv("NAVILINK_POLLING_INTERVAL", "30")
    out = CliRunner().invoke(app, ["views", "--workers", "1"])
    assert out.exit_code == 0, out.output
    assert "rebuilt" in out.output and "3 devices" in out.output
    assert_same_tables(data / "warehouse.duckdb", before / "warehouse.duckdb")
    bad = CliRunner().invoke(app, ["views", "--scheduler", f"tcp://127.0.0.1:{_free_port()}"])
    assert bad.exit_code == 2 and "--scheduler" in bad.output and "dask scheduler" in bad.output


def test_external_scheduler_and_two_workers(reference: tuple[Path, Path],
                                            tmp_path_factory: pytest.TempPathFactory,
                                            tmp_path: Path) -> None:
    before, _after = reference
    data = copy_fleet(source(tmp_path_factory), tmp_path / "data")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard", "--dashboard-address", "127.0.0.1:0"], stdout=subprocess.DEVNULL,
                              stderr=open(logs / "scheduler.log", "wb"))]  # noqa: SIM115
    try:
        procs.append(subprocess.Popen(
            [DASK, "worker", address, "--host", "127.0.0.1", "--no-dashboard", "--nworkers", "2",
             "--nthreads", "1", "--dashboard-address", "127.0.0.1:0"], stdout=subprocess.DEVNULL,
            stderr=open(logs / "worker.log", "wb")))  # noqa: SIM115

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        result = distributed.refresh_on_cluster(config(data), scheduler=address)
        assert result.full and result.devices == 3
        assert_same_tables(data / "warehouse.duckdb", before / "warehouse.duckdb")
        assert_same_partitions(data, before)
    finally:
        with contextlib.suppress(OSError, TimeoutError), Client(address, timeout="10s") as client:
            client.shutdown()  # the scheduler and its workers exit
        for p in reversed(procs):
            p.send_signal(signal.SIGINT)
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_bad_settings_are_named() -> None:
    with pytest.raises(ConfigurationError, match="--workers"), distributed.cluster(workers=0):
        pass
    with pytest.raises(ConfigurationError, match="not both"):
        distributed.refresh_on_cluster(config(Path("unused")), scheduler="tcp://127.0.0.1:1",
                                       workers=1)
