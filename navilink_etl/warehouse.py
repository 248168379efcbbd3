"""The DuckDB warehouse ``<data_dir>/warehouse.duckdb``: raw sources over relative Parquet globs, a
settings table, the models of ``sql/`` (declared in ``marts.MODELS``), and the public API:
``refresh`` (incremental, atomic), ``connect`` and ``query``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from . import cop, marts, physics, protocol
from .config import NaviLinkConfig
from .errors import StoreError
from .storage import Location

if TYPE_CHECKING:
    from collections.abc import Callable

    from .refresh import RefreshResult

WAREHOUSE_FILE = "warehouse.duckdb"

# A data folder (Path) or a Location (a local folder or s3://bucket/prefix).
DataDir = Path | Location


def as_location(data_dir: DataDir) -> Location:
    return data_dir if isinstance(data_dir, Location) else Location.from_setting(Path(data_dir))


def file_url(data_dir: DataDir, rel: str) -> str:
    """A file of the data location (``rel`` relative to it) as DuckDB / polars open it."""
    if not isinstance(data_dir, Location):
        return str(Path(data_dir) / rel)
    return data_dir.uri(data_dir.join(rel))

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
    "default_reference_c": 35.0,  # energy-field reference of the 2025-09 firmware (docs/protocol.md 4.4)
    "draw_context_s": 900.0,  # a cycle starting this soon after a draw was triggered by it
    # element_use: an element run while off or on Vacation with the tank below this is freeze
    # protection (the device heats to 8 K above its freeze setting of 6-10 degC)
    "freeze_tank_max_c": 18.0,
    "wh_per_gal_degf": physics.WH_PER_GAL_F,  # unit constants: their home is physics.py
    "degf_per_k": physics.F_PER_K,
    # hot_water: heights of the tank thermistors as fractions of the water column (assumed)
    "lower_sensor_height": 0.2,
    "upper_sensor_height": 0.75,
}


# Scalar macros the views share (DDL stays in Python; the views stay plain SELECTs): generated from
# the Python homes of the unit constants and the heat-pump COP map.
MACROS: dict[str, str] = {**physics.sql_macros(), **cop.sql_macros(), **protocol.sql_macros()}


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


def source_sql(data_dir: DataDir, glob: str, dataset: str, *, empty: bool = False,
               files: list[str] | None = None) -> str:
    """A typed relation over ``glob`` (relative path), or over ``files`` (absolute paths, for a
    refresh); typed and empty while no file exists."""
    cols = ", ".join(
        f'CAST(NULL AS {_polars_to_duckdb(t)}) AS "{c}"' for c, t in source_schema(dataset).items()
    )
    nothing = f"SELECT {cols} LIMIT 0"
    loc = as_location(data_dir)
    if files is None and loc.is_remote:  # an absolute s3:// glob through the registered fs
        if not empty and not loc.find(loc.join(glob.split("/**", 1)[0])):
            return nothing
        glob = f"{loc.url}/{glob}"
    elif files is None and not empty and not any(Path(loc.root).glob(glob)):
        return nothing
    if empty or files == []:
        return nothing
    where = "'" + glob.replace("'", "''") + "'" if files is None else (
        "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]")
    # Partition keys are stored inside the files too, so the path is not parsed (an all-digit MAC
    # would otherwise be auto-cast to an integer). BY NAME keeps every declared column present.
    # Events are whole-row facts (the store keys them by a hash of the row): a listing taken while
    # a compaction's sources are still beside the merged file sees them twice, so keep one.
    select = "SELECT DISTINCT *" if dataset == "events" else "SELECT *"
    return (
        f"{select} FROM read_parquet({where}, hive_partitioning = false, union_by_name = true) "
        f"UNION ALL BY NAME ({nothing})"
    )


def data_dir_of(config_or_data_dir: NaviLinkConfig | Path | str) -> DataDir:
    """The data folder (a resolved Path), or the ``Location`` of a store on S3."""
    if isinstance(config_or_data_dir, NaviLinkConfig):
        if config_or_data_dir.is_remote:
            return config_or_data_dir.location
        return Path(config_or_data_dir.data_dir).resolve()
    return Path(config_or_data_dir).resolve()


def warehouse_path_of(config_or_data_dir: NaviLinkConfig | Path | str) -> Path:
    """The DuckDB file: NAVILINK_WAREHOUSE, else ``<data_dir>/warehouse.duckdb`` (local store) or
    ``./warehouse.duckdb`` (store on S3)."""
    if isinstance(config_or_data_dir, NaviLinkConfig):
        return config_or_data_dir.warehouse_path.resolve()
    return Path(config_or_data_dir).resolve() / WAREHOUSE_FILE


def local_home(path: Path, data_dir: DataDir) -> Path:
    """DuckDB's folder for locks and temporary files: ``<data_dir>/.duckdb`` when the data is
    local, else beside the warehouse file."""
    return path.parent / ".duckdb" if isinstance(data_dir, Location) else Path(data_dir) / ".duckdb"


def settings_row(config: NaviLinkConfig) -> dict[str, Any]:
    """The one-row ``settings`` table: config knobs in SI units plus analysis constants."""
    poll = float(config.polling_interval)
    row: dict[str, Any] = {
        "timezone": config.timezone,
        "tariff": config.tariff,
        "price_per_kwh": float(config.price_per_kwh),
        "inlet_c": physics.f_to_c(config.inlet_temperature_f),
        "delivery_c": physics.f_to_c(config.delivery_temp_f),
        "poll_interval_s": poll,
        "gap_cap_s": min(3.0 * poll, DEFAULTS["gap_cap_max_s"]),
    }
    row.update({k: v for k, v in DEFAULTS.items() if k != "gap_cap_max_s"})
    return row


def sql_dir() -> Path:
    return Path(str(resources.files("navilink_etl") / "sql"))


def model_sql(name: str) -> str:
    return (sql_dir() / f"{name}.sql").read_text(encoding="utf-8")


def samples_sql(where: str) -> str:
    """``stg_status``'s SQL over only the raw samples satisfying ``where`` (a condition on
    ``src_status``'s device and received_at, with ``?`` parameters), applied before the
    deduplication so that Parquet row groups outside it are skipped. Duplicates share device and
    received_at, so the rows are exactly those of ``stg_status`` satisfying ``where``."""
    sql = model_sql("stg_status")
    source = "select * from src_status\n"
    if sql.count(source) != 1:
        raise StoreError("stg_status.sql no longer reads src_status in one place")
    return sql.replace(source, f"select * from src_status where {where}\n")


def sql_fingerprint() -> str:
    """Changes with any model's SQL, the registry or the macros: the stored tables are then rebuilt."""
    h = hashlib.blake2b(digest_size=8)
    h.update(repr(sorted(MACROS.items())).encode())
    for m in marts.MODELS:
        h.update(repr(m).encode())
        h.update(model_sql(m.name).encode())
    return h.hexdigest()


def open_file(path: Path, data_dir: DataDir, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open ``path`` with the data folder as DuckDB's ``file_search_path`` (the raw views' globs
    are relative to it) and UTC as the session time zone. A store on S3 is reached through its
    fsspec filesystem registered on the connection (its views hold absolute s3:// globs)."""
    home = local_home(path, data_dir)
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
    if isinstance(data_dir, Location):
        data_dir.register(con)
    else:
        con.execute("SET file_search_path = ?", [str(data_dir)])
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_object_cache = true")  # Parquet footers read once per connection
    return con


def catalog(con: duckdb.DuckDBPyConnection) -> str:
    """The open warehouse file's catalog name, quoted: ``<catalog>.main.<model>`` names a stored
    model or view even where a temporary table of the same name shadows it."""
    name: str = con.sql("SELECT current_database()").fetchall()[0][0]
    return '"' + name.replace('"', '""') + '"'


def declare_sources(con: duckdb.DuckDBPyConnection, data_dir: DataDir, *, temp: bool,
                    empty: bool = False) -> None:
    kind = "TEMP VIEW" if temp else "VIEW"
    for name, (glob, dataset) in SOURCES.items():
        sql = source_sql(data_dir, glob, dataset, empty=empty)
        con.execute(f"CREATE OR REPLACE {kind} {name} AS {sql}")


def write_settings(con: duckdb.DuckDBPyConnection, config: NaviLinkConfig) -> None:
    """The ``settings`` table and the tariff's price tables."""
    from . import tariff

    row = settings_row(config)
    cols = ", ".join(f'? AS "{k}"' for k in row)
    con.execute(f"CREATE OR REPLACE TABLE settings AS SELECT {cols}", list(row.values()))
    tariff.write_price_tables(con, config, temp=False)


def settings_fingerprint(config: NaviLinkConfig) -> str:
    """Changes with any setting or price the models read: the stored tables are then rebuilt."""
    con = duckdb.connect()
    try:
        write_settings(con, config)
        h = hashlib.blake2b(digest_size=8)
        for table in ("settings", "tariff_tou", "tariff_csv"):
            h.update(repr(con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()).encode())
        return h.hexdigest()
    finally:
        con.close()


def stored_fingerprints(path: Path) -> tuple[str, str] | None:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        rows = con.execute("SELECT sql_fingerprint, settings_fingerprint FROM warehouse_meta"
                           ).fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return (rows[0][0], rows[0][1]) if rows else None


def is_current(path: Path, config: NaviLinkConfig | None) -> bool:
    """Whether ``path`` exists and holds the current SQL's tables (and ``config``'s settings)."""
    if not path.exists():
        return False
    stored = stored_fingerprints(path)
    if stored is None:
        return False
    return stored[0] == sql_fingerprint() and (
        config is None or stored[1] == settings_fingerprint(config))


def refresh(config: NaviLinkConfig, *, full: bool = False,
            progress: Callable[[str], None] | None = None) -> RefreshResult:
    """Bring the stored tables up to date with the data folder (only the device-days whose files
    changed, unless ``full``) and publish the file atomically. See ``navilink_etl.refresh``."""
    from .refresh import run

    return run(config, full=full, progress=progress)


def connect(config_or_data_dir: NaviLinkConfig | Path | str,
            read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for reading: the marts and fits are tables; the raw-sample views
    (``stg_*``, ``int_intervals`` ...) resolve through this connection's settings.

    The file is built first when it is missing or was built from other SQL (or, given a config,
    other settings); new data is not refreshed here (``refresh`` does that). Raw sources are
    re-declared as temporary views, so datasets that appeared since the refresh are seen.
    """
    data_dir = data_dir_of(config_or_data_dir)
    path = warehouse_path_of(config_or_data_dir)
    config = config_or_data_dir if isinstance(config_or_data_dir, NaviLinkConfig) else None
    if not is_current(path, config):
        refresh(config or NaviLinkConfig(data_dir=Path(str(config_or_data_dir))))
    con = open_file(path, data_dir, read_only=read_only)
    declare_sources(con, data_dir, temp=True)
    return con


def query(config: NaviLinkConfig, sql: str,
          params: list[Any] | Mapping[str, Any] | None = None) -> pl.DataFrame:
    """Run one query against the warehouse (read-only) and return a polars DataFrame."""
    con = connect(config, read_only=True)
    try:
        return con.sql(sql, params=params).pl()
    finally:
        con.close()
