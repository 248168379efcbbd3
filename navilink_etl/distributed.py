"""The warehouse refresh on a Dask distributed cluster (``navilink-etl views --scheduler`` or
``--workers``).

The client plans the refresh exactly as a single-process one does (``refresh.run``: the manifest,
the scope of each changed device) and splits the devices into batches. Each batch is one Dask
task (``build_batch``): in an in-memory DuckDB on a worker it creates the project's models from
the same ``sql/`` files, reads the batch's previous stored rows back from ``marts/`` (an
incremental refresh), runs the ``days`` models over the batch's raw files and the ``device`` models
over the result (the same functions as a single-process refresh), and writes every stored table's
partition of each of its devices under ``marts/`` (``marts_export``). The client then assembles
``warehouse.duckdb.next`` from those partitions and publishes it like any refresh.

A task is pure and idempotent: its output is keyed by device and each file is replaced whole, so
running it twice (Dask reschedules the tasks of a worker that died, and retries a failed one)
writes the same files, and no reader ever sees half of one.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
import pyarrow as pa

from . import marts, marts_export, refresh, warehouse
from .config import NaviLinkConfig
from .errors import ConfigurationError

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

SETTINGS_TABLES = ("settings", "tariff_tou", "tariff_csv")
EXTRA_BATCH = 200  # devices per task that need only their device models (new energy files)
RETRIES = 3  # a task that raises is retried this often (a dead worker's tasks are rescheduled)


@dataclass(frozen=True)
class BatchSpec:
    """One task: ``devices`` get their ``device`` models recomputed, ``scopes`` (a subset) their
    ``days`` models from raw samples; ``incremental``: the previous rows come from ``marts/``."""

    data_dir: str
    settings: dict[str, pa.Table]
    scopes: tuple[refresh._Scope, ...]
    devices: tuple[str, ...]
    incremental: bool
    memory_limit: str | None = None


@dataclass(frozen=True)
class BatchResult:
    devices: tuple[str, ...]
    rows: int
    device_days: int
    seconds: float
    pid: int


def _worker_memory_limit() -> str:
    """Half the Dask worker's memory limit for DuckDB (the rest: Arrow tables, Python)."""
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        limit = None
    if not limit:
        return refresh.MEMORY_LIMIT
    return f"{max(256, int(limit) // 2 // 2**20)}MB"


def _data_dir(url: str) -> warehouse.DataDir:
    """The store a task reads: a local folder (the same path on every worker), or an S3 URL whose
    endpoint and keys come from the worker's own AWS_* variables (secrets never travel in tasks)."""
    if not url.startswith("s3://"):
        return Path(url)
    from .config import load_config

    return load_config(data_dir=url).location


def build_batch(spec: BatchSpec) -> BatchResult:
    """Recompute one batch of devices and write their partitions (runs on a worker)."""
    t0 = time.perf_counter()
    data_dir = _data_dir(spec.data_dir)
    fs, root = marts_export.filesystem(data_dir)
    tmp = Path(tempfile.mkdtemp(prefix="navilink-batch-"))
    con = warehouse.open_file(Path(":memory:"), data_dir, read_only=False)
    try:
        refresh.session(con, tmp, spec.memory_limit or _worker_memory_limit())
        for name, table in spec.settings.items():
            con.register("_settings", table)
            con.execute(f"CREATE TABLE main.{name} AS SELECT * FROM _settings")
            con.unregister("_settings")
        refresh.create_models(con, data_dir)
        if spec.incremental:
            fresh = {s.device for s in spec.scopes if s.replace_from is None}
            prior = [d for d in spec.devices if d not in fresh]
            for m in marts.of_keep("days"):
                table = marts_export.read(fs, root, m.name, prior)
                if table is not None and table.num_rows:
                    con.register("_prior", table)
                    con.execute(f"INSERT INTO main.{m.name} BY NAME SELECT * FROM _prior")
                    con.unregister("_prior")
        rows = refresh._refresh_days(con, data_dir, list(spec.scopes)) if spec.scopes else 0
        days = refresh.day_count(con, list(spec.scopes))
        rows += refresh._refresh_devices(con, list(spec.devices))
        marts_export.export(con, fs, root, spec.devices)
    finally:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return BatchResult(spec.devices, rows, days, time.perf_counter() - t0, os.getpid())


class DaskEngine:
    """A ``refresh.Engine`` that recomputes on the cluster behind ``client``."""

    def __init__(self, client: Client, *, memory_limit: str | None = None,
                 retries: int = RETRIES, batch_bytes: int | None = None) -> None:
        self.client = client
        self.batch_bytes = batch_bytes or refresh.BATCH_BYTES
        self.memory_limit = memory_limit
        self.retries = retries
        self.results: list[BatchResult] = []

    def __call__(self, con: duckdb.DuckDBPyConnection, config: NaviLinkConfig, data_dir: warehouse.DataDir,
                 files: pl.DataFrame, changed: pl.DataFrame | None,
                 say: refresh.Progress) -> tuple[int, int, int]:
        from distributed import as_completed

        scopes = refresh._scopes(con, files, changed, config.timezone, data_dir)
        devices = refresh.changed_devices(files, changed)
        in_files = {*files["device"].drop_nulls().to_list()}
        n_devices = len(in_files) if devices is None else len(devices)
        everyone = {s.device for s in scopes} | (in_files if devices is None else set(devices))
        incremental = changed is not None
        fs, root = marts_export.filesystem(data_dir)
        if incremental:  # the workers read the previous rows from marts/: make sure it has them
            fresh = {s.device for s in scopes if s.replace_from is None}
            days_tables = [m.name for m in marts.of_keep("days")]
            gaps = marts_export.missing(fs, root, everyone - fresh, days_tables)
            if gaps:
                say(f"marts/: writing the partitions of {len(gaps)} devices first")
                marts_export.export(con, fs, root, gaps)
        settings = {t: con.sql(f"SELECT * FROM main.{t}").to_arrow_table() for t in SETTINGS_TABLES}
        batches = [list(b) for b in refresh._batches(scopes, self.batch_bytes)]
        rest = sorted(everyone - {s.device for s in scopes})
        url = warehouse.as_location(data_dir).url
        specs = [BatchSpec(url, settings, tuple(b), tuple(sorted(s.device for s in b)),
                           incremental, self.memory_limit) for b in batches]
        specs += [BatchSpec(url, settings, (), tuple(rest[i:i + EXTRA_BATCH]), incremental,
                            self.memory_limit) for i in range(0, len(rest), EXTRA_BATCH)]
        run = uuid.uuid4().hex[:8]
        say(f"cluster: {len(specs)} tasks for {len(everyone)} devices")
        futures = [self.client.submit(build_batch, spec, key=f"navilink-batch-{run}-{i}",
                                      retries=self.retries, pure=False)
                   for i, spec in enumerate(specs)]
        self.results = []
        try:
            for done, future in enumerate(as_completed(futures, loop=self.client.loop), 1):
                self.results.append(future.result())
                say(f"cluster: {done}/{len(specs)} batches done")
        finally:
            for future in futures:
                future.release()
        rows = sum(r.rows for r in self.results)
        day_counts = sum(r.device_days for r in self.results)
        say(f"assembling the warehouse from the partitions of {len(everyone)} devices")
        assemble(con, fs, root, sorted(everyone), incremental)
        return rows, n_devices, day_counts


def assemble(con: duckdb.DuckDBPyConnection, fs: Any, root: str, devices: list[str],
             incremental: bool) -> None:
    """Replace the stored rows of ``devices`` in ``con`` by their partitions, in one transaction."""
    con.execute("BEGIN")
    try:
        con.register("_devices_df", pl.DataFrame({"device": devices}, schema={"device": pl.String}))
        con.execute("CREATE OR REPLACE TEMP TABLE _assembled AS SELECT * FROM _devices_df")
        con.unregister("_devices_df")
        for name in marts.TABLES:
            if incremental:
                con.execute(f"DELETE FROM main.{name} WHERE device IN (SELECT device FROM _assembled)")
            table = marts_export.read(fs, root, name, devices)
            if table is not None and table.num_rows:
                con.register("_part", table)
                con.execute(f"INSERT INTO main.{name} BY NAME SELECT * FROM _part")
                con.unregister("_part")
        con.execute("DROP TABLE _assembled")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _reachable(scheduler: str) -> None:
    """Fail fast, naming the setting, when nothing listens at a tcp:// scheduler address."""
    from urllib.parse import urlsplit

    fix = "start one with `dask scheduler` and give its address as tcp://host:8786"
    try:
        parts = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
        host, port = parts.hostname, parts.port or 8786
    except ValueError:
        host, port = None, None
    if not host:
        raise ConfigurationError(f"--scheduler {scheduler!r} is not an address: {fix}",
                                 setting="--scheduler")
    if parts.scheme != "tcp":
        return  # tls:// and other protocols: the client reports
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError as exc:
        raise ConfigurationError(f"--scheduler {scheduler}: no Dask scheduler answered "
                                 f"({exc.strerror or type(exc).__name__}); {fix}",
                                 setting="--scheduler") from None


@contextmanager
def cluster(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A client of the Dask scheduler at ``scheduler``, or of a new local cluster of ``workers``
    processes on 127.0.0.1 (no dashboard), closed on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ConfigurationError("the distributed build needs dask[distributed]: "
                                 "pip install 'dask[distributed]'") from None
    if scheduler is not None:
        _reachable(scheduler)
        try:
            client = Client(scheduler, timeout="30s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigurationError(
                f"--scheduler {scheduler}: no Dask scheduler answered ({type(exc).__name__}); start "
                "one with `dask scheduler` and give its address as tcp://host:8786",
                setting="--scheduler") from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers is None or workers < 1:
        raise ConfigurationError(f"--workers {workers}: give 1 or more local worker processes",
                                 setting="--workers")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=logging.WARNING,
                      # the scheduler's HTTP endpoint (health, metrics): any free port, 127.0.0.1
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as local, \
            Client(local, set_as_default=False) as client:
        yield client


def refresh_on_cluster(config: NaviLinkConfig, *, scheduler: str | None = None,
                       workers: int | None = None, full: bool = False,
                       progress: refresh.Progress | None = None) -> refresh.RefreshResult:
    """``warehouse.refresh`` with the recomputation on a Dask cluster (see the module docstring)."""
    if scheduler is not None and workers is not None:
        raise ConfigurationError("give either --scheduler (an existing cluster) or --workers "
                                 "(a local one), not both", setting="--scheduler")
    with cluster(scheduler, workers) as client:
        return refresh.run(config, full=full, progress=progress, engine=DaskEngine(client))
