"""The DuckDB warehouse: raw sources over relative Parquet globs, a settings table, the views of
``sql/`` (created in the order of ``VIEWS``) and their stored results (schema ``mat``) in
``<data_dir>/warehouse.duckdb``; the data folder is DuckDB's ``file_search_path``, so it can be moved."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from . import cop, physics
from .config import NaviLinkConfig
from .errors import StoreError

WAREHOUSE_FILE = "warehouse.duckdb"

# Views in creation order (each may only read sources, tables and views listed before it).
VIEWS: tuple[str, ...] = (
    "stg_status",
    "stg_energy_daily",
    "stg_events",
    "int_intervals",
    "int_gaps",
    "int_cycle_pieces",
    "int_device_capacity",
    "standby_loss",
    "int_device_loss",
    "int_cycles",
    "int_device_models",
    "mode_cycles",
    "heating_cycles",
    "draws",
    "recovery_rates",
    "energy_daily",
    "int_energy_slots",
    "efficiency_daily",
    "efficiency_monthly",
)

MARTS: tuple[str, ...] = tuple(v for v in VIEWS if not v.startswith(("stg_", "int_")))

# Per-sample views: always computed on demand (storing them would cost far more disk than the data).
PER_SAMPLE: tuple[str, ...] = ("stg_status", "stg_energy_daily", "stg_events", "int_intervals",
                               "int_cycle_pieces")

# Views whose results ``build`` stores as tables in the schema ``MAT_SCHEMA``; ``connect`` reads them
# instead of the views while they match the data files and the connection's settings.
STORED: tuple[str, ...] = tuple(v for v in VIEWS if v not in PER_SAMPLE)
MAT_SCHEMA = "mat"

# The build computes the views for a batch of devices at a time (memory bounded, cost linear):
# devices are added to a batch until their status files reach this many bytes (~0.5 M samples at
# ~33 bytes each; a bigger device is a batch alone). Measured on 2 cores: one device-year per
# batch ran 20 device-years in 108 s at 1.7 GB peak; three per batch took 144 s at 3.1 GB.
BATCH_BYTES = 16_000_000

# The stg_status columns the STORED views read (int_intervals' samples, int_device_loss' devices):
# the build stages only these, so only they are read from the Parquet files.
STAGED_STATUS_COLUMNS: tuple[str, ...] = (
    "device", "received_at", "local_day", "operation_mode", "dhw_mode", "setpoint_c",
    "min_setpoint_c", "tank_upper_c", "tank_lower_c", "tank_mean_c", "ambient_c", "power_w",
    "compressor_on", "upper_element_on", "lower_element_on", "drawing", "heating_demand",
    "anti_legionella_active", "stored_wh", "energy_to_setpoint_wh", "full_recovery_wh",
)

# DuckDB settings of the build connection (spills to <data_dir>/.duckdb/tmp beyond the limit).
BUILD_MEMORY_LIMIT = "3GB"

# Views worth computing once per connection when many marts are read (connect(materialize=True)).
MATERIALIZE: tuple[str, ...] = (
    "int_intervals", "standby_loss", "int_device_loss", "int_cycle_pieces", "int_cycles",
    "int_device_models",
)

# Raw sources: name -> (glob relative to the data folder, dataset whose schema types it).
SOURCES: dict[str, tuple[str, str]] = {
    "src_status": ("status/**/*.parquet", "status"),
    "src_energy": ("energy/**/*.parquet", "energy"),
    "src_events": ("events/**/*.parquet", "events"),
    "src_truth_devices": ("truth/devices/**/*.parquet", "truth_devices"),
    "src_truth_steps": ("truth/steps/**/*.parquet", "truth_steps"),
    "src_truth_cycles": ("truth/cycles/**/*.parquet", "truth_cycles"),
    "src_truth_draws": ("truth/draws/**/*.parquet", "truth_draws"),
}

# Analysis constants that are not user settings (kept in the settings table, not in SQL files).
DEFAULTS: dict[str, float] = {
    "gap_cap_max_s": 900.0,  # a held value never lasts longer than 15 min
    "standby_min_s": 4 * 3600.0,  # shortest standby-decay window fitted
    "standby_floor_w": 1.0,  # the controls' draw, standby even while a heat source runs
    "idle_max_w": 100.0,  # below: standby / fan pre-run; above: a heat source draws power
    "element_min_w": 2000.0,  # at or above: an element is on
    "rated_compressor_w": 450.0,  # used only where neither power reading fits the relay flags
    "rated_element_w": 5000.0,
    "default_ua_w_per_k": 2.4,  # used until a device has a fitted standby window
    "default_capacity_wh_per_k": 281.0,  # 65-gal tank (241.7 L x 1.163 Wh/(L*K))
    "default_reference_c": 35.0,  # energy-field reference of the 2025-09 firmware (PROTOCOL 4.4)
    "draw_context_s": 900.0,  # a cycle starting this soon after a draw was triggered by it
}


# Scalar macros the views share (DDL stays in Python; the views stay plain SELECTs): generated from
# the Python homes of the unit constants and the heat-pump COP map.
MACROS: dict[str, str] = {**physics.sql_macros(), **cop.sql_macros()}


def _polars_to_duckdb(dtype: Any) -> str:
    if dtype == pl.String:
        return "VARCHAR"
    if dtype == pl.Date:
        return "DATE"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    if dtype == pl.Boolean:
        return "BOOLEAN"
    if dtype in (pl.Float64, pl.Float32):
        return "DOUBLE"
    if dtype in (pl.Int32, pl.Int16, pl.Int8):
        return "INTEGER"
    if dtype == pl.Int64:
        return "BIGINT"
    raise TypeError(f"no DuckDB type for {dtype}")


def source_schema(dataset: str) -> dict[str, Any]:
    """Polars schema of a raw dataset (the store's and the simulator's own declarations)."""
    from .sim import truth

    if dataset.startswith("truth_"):
        return {
            "truth_devices": truth.device_schema, "truth_steps": truth.step_schema,
            "truth_cycles": truth.cycle_schema, "truth_draws": truth.draw_schema,
        }[dataset]()  # fmt: skip
    from .collect.store import schema_of

    return schema_of(dataset)


def _source_sql(data_dir: Path, glob: str, dataset: str, *, empty: bool = False) -> str:
    """A typed relation over ``glob`` (relative path); typed and empty while no file exists."""
    cols = ", ".join(
        f'CAST(NULL AS {_polars_to_duckdb(t)}) AS "{c}"' for c, t in source_schema(dataset).items()
    )
    nothing = f"SELECT {cols} LIMIT 0"
    if empty or not any(data_dir.glob(glob)):
        return nothing
    # Partition keys are stored inside the files too, so the path is not parsed (an all-digit MAC
    # would otherwise be auto-cast to an integer). BY NAME keeps every declared column present.
    return (
        f"SELECT * FROM read_parquet('{glob}', hive_partitioning = false, union_by_name = true) "
        f"UNION ALL BY NAME ({nothing})"
    )


def _data_dir(config_or_data_dir: NaviLinkConfig | Path | str) -> Path:
    if isinstance(config_or_data_dir, NaviLinkConfig):
        return Path(config_or_data_dir.data_dir).resolve()
    return Path(config_or_data_dir).resolve()


def settings_row(config: NaviLinkConfig) -> dict[str, Any]:
    """The one-row ``settings`` table: config knobs in SI units plus analysis constants."""
    poll = float(config.polling_interval)
    row: dict[str, Any] = {
        "timezone": config.timezone,
        "tariff": config.tariff,
        "price_per_kwh": float(config.price_per_kwh),
        "inlet_c": (config.inlet_temperature_f - 32.0) * 5.0 / 9.0,
        "poll_interval_s": poll,
        "gap_cap_s": min(3.0 * poll, DEFAULTS["gap_cap_max_s"]),
    }
    row.update({k: v for k, v in DEFAULTS.items() if k != "gap_cap_max_s"})
    return row


def sql_dir() -> Path:
    return Path(str(resources.files("navilink_etl") / "sql"))


def view_sql(name: str) -> str:
    return (sql_dir() / f"{name}.sql").read_text(encoding="utf-8")


def _sql_fingerprint() -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(f"stored:{MAT_SCHEMA}:{STORED}".encode())
    h.update(repr(sorted(MACROS.items())).encode())
    for name in VIEWS:
        h.update(name.encode())
        h.update(view_sql(name).encode())
    return h.hexdigest()


def _open(path: Path, data_dir: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    home = data_dir / ".duckdb"
    try:
        if not read_only:
            home.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise StoreError(
            f"cannot open the warehouse {path}: {exc}; close other programs writing it, "
            "or open it read-only", path=str(path)) from None
    if home.is_dir():
        con.execute("SET home_directory = ?", [str(home)])
    con.execute("SET file_search_path = ?", [str(data_dir)])
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_object_cache = true")  # Parquet footers read once per connection
    return con


def _refresh_sources(con: duckdb.DuckDBPyConnection, data_dir: Path, *, temp: bool,
                     empty: bool = False) -> None:
    kind = "TEMP VIEW" if temp else "VIEW"
    for name, (glob, dataset) in SOURCES.items():
        sql = _source_sql(data_dir, glob, dataset, empty=empty)
        con.execute(f"CREATE OR REPLACE {kind} {name} AS {sql}")


def _write_settings(con: duckdb.DuckDBPyConnection, config: NaviLinkConfig, *, temp: bool) -> None:
    from . import tariff

    row = settings_row(config)
    kind = "TEMP TABLE" if temp else "TABLE"
    cols = ", ".join(f'? AS "{k}"' for k in row)
    con.execute(f"CREATE OR REPLACE {kind} settings AS SELECT {cols}", list(row.values()))
    tariff.write_price_tables(con, config, temp=temp)


def build(config: NaviLinkConfig) -> Path:
    """(Re)build ``<data_dir>/warehouse.duckdb``: settings, tariff tables, sources, all views, and
    the stored results of the ``STORED`` views (see ``store_results``)."""
    data_dir = _data_dir(config)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / WAREHOUSE_FILE
    con = _open(path, data_dir, read_only=False)
    try:
        con.execute("BEGIN")
        for name in reversed(VIEWS):
            con.execute(f"DROP VIEW IF EXISTS {name}")
        _write_settings(con, config, temp=False)
        for name, body in MACROS.items():
            con.execute(f"CREATE OR REPLACE MACRO {name}{body}")
        # Views are bound against empty typed sources (binding over the real globs would read
        # every file's footer once per nesting level), then the sources are pointed at the data.
        _refresh_sources(con, data_dir, temp=False, empty=True)
        # Binding a view inlines every view it reads, recursively; each view is followed by an
        # empty temporary table of its own shape, so the next ones bind against flat tables (the
        # stored SQL names views, resolved when queried).
        for name in VIEWS:
            try:
                con.execute(f"CREATE VIEW {name} AS {view_sql(name)}")
                con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM main.{name} LIMIT 0")
            except duckdb.Error as exc:
                raise StoreError(f"view {name} failed to build: {exc}", view=name) from None
        for name in VIEWS:
            con.execute(f"DROP TABLE temp.main.{name}")
        _refresh_sources(con, data_dir, temp=False)
        con.execute(
            "CREATE OR REPLACE TABLE warehouse_meta AS SELECT ? AS sql_fingerprint, "
            "?::TIMESTAMPTZ AS built_at, ? AS views, CAST(NULL AS VARCHAR) AS data_fingerprint",
            [_sql_fingerprint(), datetime.now(UTC), list(VIEWS)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        con.close()
        raise
    try:
        store_results(con, data_dir)
    finally:
        con.close()
    return path


def _data_fingerprint(con: duckdb.DuckDBPyConnection, data_dir: Path) -> str:
    """Every source file (path, size, mtime) and the settings and tariff tables ``con`` sees."""
    h = hashlib.blake2b(digest_size=16)
    for glob, _ in SOURCES.values():
        for f in sorted(data_dir.glob(glob)):
            st = f.stat()
            h.update(f"{f.relative_to(data_dir).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    for table in ("settings", "tariff_tou", "tariff_csv"):
        h.update(repr(con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()).encode())
    return h.hexdigest()


def _device_batches(con: duckdb.DuckDBPyConnection,
                    data_dir: Path) -> list[tuple[list[str], list[str]]]:
    """(devices, status files) per batch: each device's ``device=<mac>`` folder (the store's
    layout), plus every status file outside such a folder, filtered by device."""
    own: dict[str, list[Path]] = {}
    loose: list[str] = []
    for f in sorted(data_dir.glob(SOURCES["src_status"][0])):
        dev = next((p[7:] for p in f.relative_to(data_dir).parts if p.startswith("device=")), None)
        if dev is None:
            loose.append(str(f))
        else:
            own.setdefault(dev, []).append(f)
    devices = set(own)
    if loose:
        devices |= {r[0] for r in con.execute(
            "SELECT DISTINCT device FROM read_parquet(?, hive_partitioning = false, "
            "union_by_name = true) WHERE device IS NOT NULL", [loose]).fetchall()}
    # devices with only EMS history still get energy_daily rows
    devices |= {r[0] for r in con.sql(
        "SELECT DISTINCT device FROM src_energy WHERE device IS NOT NULL").fetchall()}
    batches: list[tuple[list[str], list[str]]] = []
    size = 0
    for dev in sorted(devices):
        files = own.get(dev, [])
        if not batches or size >= BATCH_BYTES:
            batches.append(([], list(loose)))
            size = 0
        batches[-1][0].append(dev)
        batches[-1][1].extend(str(f) for f in files)
        size += sum(f.stat().st_size for f in files)
    return batches


def _sql_list(items: list[str]) -> str:
    return "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "]"


def store_results(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Compute the views one batch of devices at a time and store the ``STORED`` ones as tables
    ``mat.<view>``; ``connect`` uses them while the data and settings are unchanged."""
    fingerprint = _data_fingerprint(con, data_dir)  # before reading: later files make it stale
    tmp = data_dir / ".duckdb" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    con.execute("SET temp_directory = ?", [str(tmp)])
    con.execute(f"SET memory_limit = '{BUILD_MEMORY_LIMIT}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"DROP SCHEMA IF EXISTS {MAT_SCHEMA} CASCADE")
    con.execute(f"CREATE SCHEMA {MAT_SCHEMA}")
    catalog = con.sql("SELECT current_database()").fetchall()[0][0].replace('"', '""')
    created: set[str] = set()
    try:
        for devices, files in _device_batches(con, data_dir):
            glob, dataset = SOURCES["src_status"]
            status = (_source_sql(data_dir, glob, dataset, empty=True) if not files else
                      _source_sql(data_dir, glob, dataset).replace(f"'{glob}'", _sql_list(files)))
            con.execute(f"CREATE OR REPLACE TEMP VIEW src_status AS {status}")
            for view in VIEWS:
                where = " WHERE list_contains(?, device)" if view.startswith("stg_") else ""
                cols = ", ".join(STAGED_STATUS_COLUMNS) if view == "stg_status" else "*"
                con.execute(f'CREATE OR REPLACE TEMP TABLE {view} AS '
                            f'SELECT {cols} FROM "{catalog}".main.{view}{where}',
                            [devices] if where else None)
            for view in STORED:
                if view in created:
                    con.execute(f"INSERT INTO {MAT_SCHEMA}.{view} SELECT * FROM temp.main.{view}")
                else:
                    con.execute(f"CREATE TABLE {MAT_SCHEMA}.{view} AS "
                                f"SELECT * FROM temp.main.{view}")
                    created.add(view)
            for view in reversed(VIEWS):
                con.execute(f"DROP TABLE temp.main.{view}")
        for view in STORED:
            if view not in created:  # no data: typed, empty
                con.execute(f'CREATE TABLE {MAT_SCHEMA}.{view} AS '
                            f'SELECT * FROM "{catalog}".main.{view} LIMIT 0')
    finally:
        con.execute("DROP VIEW IF EXISTS temp.main.src_status")
    con.execute("UPDATE warehouse_meta SET data_fingerprint = ?", [fingerprint])


def _is_current(path: Path, data_dir: Path) -> bool:
    if not path.exists():
        return False
    try:
        con = _open(path, data_dir, read_only=True)
    except StoreError:
        return True  # locked by a writer: use it as it is
    try:
        rows = con.execute("SELECT sql_fingerprint FROM warehouse_meta").fetchall()
    except duckdb.Error:
        return False
    finally:
        con.close()
    return bool(rows) and rows[0][0] == _sql_fingerprint()


def connect(config_or_data_dir: NaviLinkConfig | Path | str, read_only: bool = False, *,
            materialize: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (building it first if missing or built from other SQL).

    Raw sources are re-declared as temporary views on every connection, so datasets that appeared
    since the build are seen. With a config, its settings override the stored ones for this
    connection only. While the data files and settings are those of the last build, the
    ``STORED`` views are read from the build's tables (``search_path`` ``mat,main``); otherwise
    every view is computed from the data (same results, slower: run ``build`` again). ``materialize`` computes the heavy intermediate views (``MATERIALIZE``) once
    into temporary tables that shadow them: a snapshot for this connection, much faster when
    several marts are read.
    """
    data_dir = _data_dir(config_or_data_dir)
    path = data_dir / WAREHOUSE_FILE
    config = config_or_data_dir if isinstance(config_or_data_dir, NaviLinkConfig) else None
    if not _is_current(path, data_dir):
        build(config or NaviLinkConfig(data_dir=data_dir))
    con = _open(path, data_dir, read_only=read_only)
    _refresh_sources(con, data_dir, temp=True)
    if config is not None:
        _write_settings(con, config, temp=True)
    if _results_current(con, data_dir):
        con.execute(f"SET search_path = '{MAT_SCHEMA},main'")
    if materialize:
        materialize_intermediates(con)
    return con


def _results_current(con: duckdb.DuckDBPyConnection, data_dir: Path) -> bool:
    try:
        rows = con.execute("SELECT data_fingerprint FROM main.warehouse_meta").fetchall()
    except duckdb.Error:
        return False
    return bool(rows) and rows[0][0] is not None and rows[0][0] == _data_fingerprint(con, data_dir)


def uses_stored_results(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``con`` reads the build's stored results (``mat.<view>``) for the ``STORED`` views."""
    path = con.sql("SELECT current_setting('search_path')").fetchall()[0][0] or ""
    return MAT_SCHEMA in path.split(",")


def materialize_intermediates(con: duckdb.DuckDBPyConnection) -> None:
    """Compute the ``MATERIALIZE`` views once into temporary tables that shadow them.

    Nothing to do while the connection reads the build's stored results (the marts are tables).
    """
    if uses_stored_results(con):
        return
    for name in MATERIALIZE:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM main.{name}")


def query(config: NaviLinkConfig, sql: str, params: list[Any] | Mapping[str, Any] | None = None,
          *, materialize: bool = False) -> pl.DataFrame:
    """Run one query against the warehouse (read-only) and return a polars DataFrame.

    Pass ``materialize=True`` when the query reads several marts (see ``connect``).
    """
    con = connect(config, read_only=True, materialize=materialize)
    try:
        return con.sql(sql, params=params).pl()
    finally:
        con.close()
