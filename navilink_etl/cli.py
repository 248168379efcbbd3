"""Command line: parse options -> one library call -> errors to exit codes.

Every command has ``--help``. Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage,
3 the cloud rejected the credentials.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import ConfigurationError, InvalidCredentialsError, NaviLinkError

app = typer.Typer(
    name="navilink-etl",
    help="Collect, warehouse and report on Navien NWP500 heat pump water heaters.\n\n"
    "With no NAVILINK_EMAIL set, everything runs against the embedded simulator.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sim_app = typer.Typer(help="The embedded simulator and offline fake NaviLink cloud.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")

log = logging.getLogger("navilink_etl")


def _config(**overrides: Any) -> Any:
    from .config import load_config

    return load_config(**overrides)


def _setup_logging(level: str) -> None:
    from rich.logging import RichHandler

    root = logging.getLogger()
    if any(isinstance(h, RichHandler) for h in root.handlers):
        return
    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(show_path=False, rich_tracebacks=False, log_time_format="%H:%M:%S")
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    from .redact import install

    root.addHandler(install(handler))
    root.setLevel(level)
    for noisy in ("amqtt", "transitions", "apscheduler.executors", "aiohttp.access", "websockets"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _fail(exc: BaseException) -> typer.Exit:
    if isinstance(exc, InvalidCredentialsError):
        typer.secho(f"error: {exc}\nCheck NAVILINK_EMAIL / NAVILINK_PASSWORD (the cloud rejected them; "
                    "not retrying, to avoid locking the account).", err=True, fg="red")
        return typer.Exit(3)
    if isinstance(exc, ConfigurationError):
        typer.secho(f"error: {exc}", err=True, fg="red")
        return typer.Exit(2)
    typer.secho(f"error: {exc}", err=True, fg="red")
    return typer.Exit(1)


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _parse_day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD", param_hint=name) from None


@app.command()
def collect(
    interval: Annotated[float | None, typer.Option(help="Seconds between status polls (simulated seconds on the embedded default). Default: NAVILINK_POLLING_INTERVAL.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many minutes (real time). Default: run until Ctrl-C.")] = None,
    devices: Annotated[int, typer.Option(help="Simulated heaters (embedded default only).", min=1)] = 2,
    speed: Annotated[float, typer.Option(help="Simulated clock speed-up (embedded default only).", min=0.01)] = 60.0,
    debug: Annotated[bool, typer.Option("--debug", help="Verbose logs.")] = False,
    publish: Annotated[str | None, typer.Option("--publish", metavar="URL", help="Publish to Home Assistant over MQTT discovery: mqtt://[user:pass@]host:1883 (mqtts:// for TLS). Default: NAVILINK_PUBLISH_URL.")] = None,
    shard: Annotated[str | None, typer.Option("--shard", metavar="K/N", help="Poll only the devices of shard K of N (stable MAC hashing), e.g. 2/4: run N collectors, one per shard, into one store. Default: NAVILINK_SHARD, else all devices.")] = None,
) -> None:
    """Poll every device on a schedule and store status, energy history and events under data/."""
    try:
        config = _config(log_level="DEBUG" if debug else None, publish_url=publish, shard=shard)
        _setup_logging(config.log_level)
        from . import warehouse
        from .collect.run import run_collector
        from .embedded import embedded_cloud

        cloud = embedded_cloud(devices=devices, speed=speed) if config.is_embedded else None
        # the marts job: incremental, published atomically, so readers are never blocked
        refresh = functools.partial(warehouse.refresh, config) if config.refresh_minutes > 0 else None
        stats = _run(run_collector(config, interval=interval, duration_min=duration, debug=debug,
                                   cloud=cloud, refresh=refresh))
    except NaviLinkError as exc:
        raise _fail(exc) from None
    if stats is not None and getattr(stats, "fatal", None):
        raise typer.Exit(1)


@sim_app.command("serve")
def sim_serve(
    devices: Annotated[int, typer.Option(help="Number of simulated heaters.", min=1)] = 1,
    speed: Annotated[float, typer.Option(help="Simulated clock speed-up.", min=0.01)] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    latency: Annotated[float, typer.Option(help="Reply latency in seconds (the real cloud: 2-4).", min=0)] = 0.2,
    hostile: Annotated[bool, typer.Option("--hostile", help="Mix hostile devices and messages (path-traversal MACs, absurd numbers, a 10 MB payload, ...) into the good ones.")] = False,
) -> None:
    """Run the offline fake NaviLink cloud in the foreground and print settings to reach it.

    Stops cleanly (removing its temporary CA folder) on Ctrl-C or SIGTERM.

    The printed lines are shell exports: eval "$(navilink-etl sim serve ...)" does not work since
    it runs in the foreground; paste them into another terminal instead.
    """
    _setup_logging("WARNING")
    from .sim.serve import serve

    def _print(line: str) -> None:
        print(line, flush=True)

    _run(serve(n_devices=devices, speed=speed, seed=seed, latency_s=latency, print_fn=_print, hostile=hostile))


@app.command()
def simulate(
    devices: Annotated[int, typer.Option(help="Number of simulated heaters.", min=1)] = 1,
    days: Annotated[float, typer.Option(help="Days to simulate.", min=0.01)] = 30,
    interval: Annotated[float, typer.Option(help="Poll interval in seconds.", min=1)] = 30.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same output).")] = 0,
    loss: Annotated[float, typer.Option(help="Share of polls lost at random (0-1).", min=0, max=1)] = 0.0,
    outage_per_week: Annotated[bool, typer.Option("--outage-per-week", help="Add one multi-hour outage per week.")] = False,
    start: Annotated[str | None, typer.Option(help="First simulated day (YYYY-MM-DD, UTC). Default: DAYS ago.")] = None,
    volume: Annotated[int, typer.Option(help="Tank size in gallons: 50, 65 or 80.")] = 65,
    location: Annotated[str, typer.Option(help="conditioned, basement or garage.")] = "basement",
    setpoint: Annotated[float | None, typer.Option("--setpoint", metavar="F", help="Setpoint in degF, within the device's range (95-150). Default: 141 degF.")] = None,
    mode: Annotated[str | None, typer.Option("--mode", metavar="NAME", help="DHW mode: heat_pump, energy_saver (default), high_demand or electric.")] = None,
    shift: Annotated[str | None, typer.Option("--shift", metavar="HH:MM-HH:MM", help="Load shift, local time: preheat to the device's maximum for 2 h before the window, no heating during it.")] = None,
) -> None:
    """Write simulated samples (and ground truth under data/truth/) straight into the store.

    The same --seed gives the same weather and draws, so runs that differ only in --setpoint,
    --mode or --shift differ only by those settings.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    try:
        config = _config()
        _setup_logging(config.log_level)
        from .sim.simulate import simulate as run_sim

        day = _parse_day(start, "--start")
        start_dt = datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None
        with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} device-days"),
                      TimeRemainingColumn(), transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("sim", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = run_sim(config.local_data_dir, devices=devices, days=days, interval_s=interval, seed=seed,
                             loss=loss, outage_per_week=outage_per_week, start=start_dt,
                             volume_gal=volume, location=location, progress=progress,
                             ems_tz=config.timezone, setpoint_f=setpoint, mode=mode, shift=shift)
    except NaviLinkError as exc:
        raise _fail(exc) from None
    typer.echo(f"wrote {result.samples:,} samples ({result.polls:,} polls, {result.pushes:,} pushes, "
               f"{result.lost:,} polls lost on purpose) for {len(result.devices)} device(s) in "
               f"{result.seconds:.1f} s into {config.data_dir}/ (ground truth in {config.data_dir}/truth/)")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="JSONL of captured messages, or a CSV from nwp500-python's monitor.", exists=True, dir_okay=False)],
) -> None:
    """Replay captured traffic through the parser into the store (never duplicates).

    Lines that cannot be imported are listed with their line numbers and kept, with the reason,
    in data/quarantine/. Exits 0 when anything could be read, 1 when nothing could.
    """
    try:
        config = _config()
        _setup_logging(config.log_level)
        from .collect.importer import import_file

        result = import_file(config, file)
    except NaviLinkError as exc:
        raise _fail(exc) from None
    except Exception as exc:  # a file must never end in a traceback: say what happened
        log.debug("import of %s failed", file, exc_info=True)
        typer.secho(f"error: the import of {file} stopped: {type(exc).__name__}: {exc}; lines "
                    "imported so far are kept (importing again never duplicates them)", err=True, fg="red")
        raise typer.Exit(1) from None
    typer.echo(str(result))
    if result.nothing_read:
        typer.secho(f"error: nothing in {file} could be read", err=True, fg="red")
        raise typer.Exit(1)


@app.command()
def export(
    format: Annotated[str, typer.Option("--format", help="csv, parquet or jsonl.")] = "csv",
    device: Annotated[str | None, typer.Option(help="Only this device (MAC).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")] = None,
    to: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (UTC), inclusive.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output file (default: exports/<name>).")] = None,
) -> None:
    """Export raw status samples (CSV has the original monitor's columns, temperatures in degF)."""
    if format not in ("csv", "parquet", "jsonl"):
        raise typer.BadParameter("use csv, parquet or jsonl", param_hint="--format")
    from .identity import normalize_mac

    mac = normalize_mac(device) if device is not None else None
    if device is not None and mac is None:
        raise typer.BadParameter(f"{device!r} is not a MAC (12 hex digits)", param_hint="--device")
    try:
        config = _config()
        from .collect.export import export as run_export

        path = run_export(config, format, out, device=mac, start=_parse_day(from_, "--from"),
                          end=_parse_day(to, "--to"))
    except NaviLinkError as exc:
        raise _fail(exc) from None
    typer.echo(str(path))


def _refresh(full: bool, scheduler: str | None = None, workers: int | None = None) -> None:
    from rich.console import Console

    try:
        config = _config()
        console = Console(stderr=True)
        with console.status("refreshing the warehouse") as line:
            if scheduler is None and workers is None:
                from .warehouse import refresh as run_refresh

                result = run_refresh(config, full=full, progress=lambda msg: line.update(msg))
            else:
                from .distributed import refresh_on_cluster

                result = refresh_on_cluster(config, scheduler=scheduler, workers=workers, full=full,
                                            progress=lambda msg: line.update(msg))
    except NaviLinkError as exc:
        raise _fail(exc) from None
    how = "rebuilt (" + "; ".join(result.reasons) + ")" if result.full else "refreshed"
    typer.echo(f"{how} {result.path}: {result.device_days} device-days of {result.devices} "
               f"devices recomputed, {result.rows} rows, {result.files_changed} files changed, "
               f"{result.seconds:.1f} s")


_FULL = Annotated[bool, typer.Option("--full", help="Rebuild every table from all the data.")]
_SCHEDULER = Annotated[str | None, typer.Option(
    "--scheduler", metavar="tcp://HOST:8786",
    help="Recompute on an existing Dask cluster: its scheduler's address (the workers must "
         "reach the same data folder).")]
_WORKERS = Annotated[int | None, typer.Option(
    "--workers", min=1, help="Recompute on a local Dask cluster of N worker processes (127.0.0.1).")]


@app.command()
def refresh(full: _FULL = False, scheduler: _SCHEDULER = None, workers: _WORKERS = None) -> None:
    """Bring data/warehouse.duckdb up to date: recompute the device-days whose files changed since
    the last refresh (and the marts of those devices), write their partitions under data/marts/,
    then replace the file atomically."""
    _refresh(full, scheduler, workers)


@app.command()
def views(full: _FULL = False, scheduler: _SCHEDULER = None, workers: _WORKERS = None) -> None:
    """The same as `refresh` (its former name): bring data/warehouse.duckdb up to date."""
    _refresh(full, scheduler, workers)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help='SQL over the warehouse, e.g. "select * from energy_daily".')],
    limit: Annotated[int, typer.Option(help="Rows to print at most.")] = 50,
) -> None:
    """Run SQL against the warehouse (as of its last refresh) and print the result."""
    import polars as pl

    try:
        config = _config()
        from .warehouse import query as run_query

        df = run_query(config, sql)
    except NaviLinkError as exc:
        raise _fail(exc) from None
    except Exception as exc:  # duckdb errors: show the message, not a traceback
        if type(exc).__module__.startswith("duckdb") or type(exc).__module__.startswith("_duckdb"):
            typer.secho(f"error: {exc}", err=True, fg="red")
            raise typer.Exit(1) from None
        raise
    with pl.Config(tbl_rows=limit, tbl_cols=-1, tbl_width_chars=200):
        typer.echo(str(df.head(limit)))


@app.command()
def report(
    device: Annotated[str | None, typer.Option(help="Only this device (MAC). Default: all.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD. Default: 30 days before the last data.")] = None,
    to: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD. Default: the last day with data.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports"),
    units: Annotated[str, typer.Option(help="F or C.")] = "F",
    format: Annotated[list[str] | None, typer.Option("--format", help="html, pdf, png (repeatable). Default: all three.")] = None,
) -> None:
    """Write an efficiency report with charts (HTML, PDF and PNG) per device."""
    units = units.upper()
    if units not in ("F", "C"):
        raise typer.BadParameter("use F or C", param_hint="--units")
    formats = tuple(format or ("html", "pdf", "png"))
    bad = [f for f in formats if f not in ("html", "pdf", "png")]
    if bad:
        raise typer.BadParameter(f"unknown format {bad[0]!r}; use html, pdf or png", param_hint="--format")
    try:
        config = _config()
        _setup_logging(config.log_level)
        from .report.build import build_report

        paths = build_report(config, device=device, start=_parse_day(from_, "--from"),
                             end=_parse_day(to, "--to"), out_dir=out, units=units, formats=formats,
                             progress=lambda msg: typer.echo(msg, err=True))
    except NaviLinkError as exc:
        raise _fail(exc) from None
    for p in paths:
        typer.echo(str(p))


@app.command()
def whatif(
    device: Annotated[str | None, typer.Option(help="The device (MAC). Default: the only one in the warehouse.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="First local day, YYYY-MM-DD. Default: 7 days before the last data.")] = None,
    to: Annotated[str | None, typer.Option(help="Last local day, YYYY-MM-DD, inclusive. Default: the last day with data.")] = None,
    setpoint: Annotated[float | None, typer.Option("--setpoint", metavar="F", help="What if the setpoint were F degF (within the device's range).")] = None,
    mode: Annotated[str | None, typer.Option("--mode", metavar="NAME", help="What if the DHW mode were heat_pump, energy_saver, high_demand or electric.")] = None,
    shift: Annotated[str | None, typer.Option("--shift", metavar="HH:MM-HH:MM", help="What if it preheated before this local window and did not heat during it (also the peak window).")] = None,
    tariff: Annotated[str | None, typer.Option("--tariff", metavar="KIND[:ARG]", help="flat[:PRICE], tou[:PLAN.json] (default plan: data/tou/) or csv[:FILE]. Default: NAVILINK_TARIFF.")] = None,
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Replay the period through a calibrated twin of the heater: first as it was (the backcast,
    against what was measured), then with the changed settings; with no setting given, the
    standard what-ifs (setpoint 10 degF lower, heat pump only, a 16:00-21:00 shift on a TOU tariff).
    Needs a refreshed warehouse (`navilink-etl refresh`)."""
    if format not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--format")
    from rich.console import Console

    err = Console(stderr=True)
    try:
        config = _config()
        _setup_logging(config.log_level)
        from .twin import whatif as run_whatif

        with err.status("what-if") as line:
            result = run_whatif(config, device=device, start=_parse_day(from_, "--from"),
                                end=_parse_day(to, "--to"), setpoint_f=setpoint, mode=mode, shift=shift,
                                tariff=tariff, progress=lambda msg: line.update(msg))
    except NaviLinkError as exc:
        raise _fail(exc) from None
    if format == "json":
        import orjson

        typer.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    from .twin.table import render

    out = Console(width=None if sys.stdout.isatty() else 120)  # pipes and files: no 80-column wrap
    for part in render(result):
        out.print(part)


@app.command()
def doctor() -> None:
    """Print the current findings per device (falling heat-pump COP, a stuck sensor, error codes,
    offline periods, ...; docs/metrics.md 8). Exit status: 0 none, 1 a warning, 2 an error, so it
    can drive an alert from cron or systemd."""
    try:
        config = _config()
        from .doctor import diagnose

        result = diagnose(config, progress=lambda msg: typer.echo(msg, err=True))
    except NaviLinkError as exc:
        raise _fail(exc) from None
    typer.echo(result.text)
    raise typer.Exit(result.exit_code)


@app.command()
def status(
    device: Annotated[str | None, typer.Option(help="Only this device (MAC, any case, with or without separators).")] = None,
    devices: Annotated[int, typer.Option(help="Simulated heaters (embedded default only).", min=1)] = 2,
) -> None:
    """Sign in and print each device's live status once.

    With no NAVILINK_EMAIL set, prints the embedded simulator's heaters (and says they are simulated).
    Device-list entries the client leaves out (malformed) and devices that fail are listed on stderr.
    """
    from .identity import normalize_mac

    want = normalize_mac(device) if device is not None else None
    if device is not None and want is None:
        raise typer.BadParameter(f"{device!r:.40} is not a MAC (12 hex digits)", param_hint="--device")
    try:
        config = _config()
        _setup_logging(config.log_level)
        if config.is_embedded:
            failed = _run(_print_simulated_status(config, want, devices))
        else:
            failed = _run(_print_status(config, want))
    except NaviLinkError as exc:
        raise _fail(exc) from None
    if failed:
        raise typer.Exit(1)


def _mode_name(mode: Any) -> str:
    from .protocol import DhwMode, mode_name

    return str(mode_name(DhwMode, None if mode is None else int(mode)))


async def _print_simulated_status(config: Any, want: str | None, n_devices: int) -> int:
    """The embedded default, as ``collect`` starts it: the offline fake cloud on 127.0.0.1."""
    from pydantic import SecretStr

    from .sim.cloud import FakeCloud

    typer.echo(f"No NAVILINK_EMAIL set: these {n_devices} heater(s) are SIMULATED (the embedded offline "
               "fake NaviLink cloud on 127.0.0.1); no real heater is read.")
    async with FakeCloud(n_devices=n_devices, timezone=config.timezone) as fc:
        over = dict(fc.client_overrides())
        over["password"] = SecretStr(str(over["password"]))
        return await _print_status(config.model_copy(update=over), want, simulated=True)


async def _print_status(config: Any, want: str | None, *, simulated: bool = False) -> int:
    """Print each device's status; returns how many devices failed."""
    from . import NaviLinkClient

    failed = 0
    tag = " (simulated)" if simulated else ""
    async with NaviLinkClient(config=config) as client:
        await client.authenticate()
        devices = await client.get_devices()
        for s in client.skipped:
            typer.secho(f"skipped device-list entry {s.index}: {s.reason}", err=True, fg="yellow")
        for d in devices:
            if want and d.mac != want:
                continue
            try:
                st = await d.get_status()
            except NaviLinkError as exc:
                failed += 1
                typer.secho(f"{d.name} {d.mac}{tag}: {type(exc).__name__}: {exc}", err=True, fg="red")
                continue
            typer.echo(f"{d.name} {d.mac}{tag}: tank {st.dhw_temperature:.1f}°F, setpoint "
                       f"{st.dhw_temperature_setting:.1f}°F, charge {st.dhw_charge_per}%, "
                       f"{st.current_inst_power} W, mode {_mode_name(st.dhw_mode)}, operationMode {st.operation_mode} "
                       f"({st.operation_state})")
    return failed


def main() -> None:
    app()


if __name__ == "__main__":
    main()
