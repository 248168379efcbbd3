"""``run_collector``: wire config, cloud client, store and scheduler; run until stopped.

The cloud is the real NaviLink cloud unless the caller passes ``cloud``: an async context manager
factory that yields the config to use and the cloud's clock (the CLI's embedded default passes the
offline fake cloud this way, so this package never imports the simulator).

Fleets: ``shard`` (``--shard K/N`` / ``NAVILINK_SHARD``) limits the collector to the devices shard K
of N owns (``shard.Shard``), with its own spool (``spool/s<K>of<N>/``) and file names, so N collectors
write into one store without sharing a lock; ``NAVILINK_ACCOUNTS_FILE`` adds accounts
(``accounts``). Spools of shards no longer running here (N changed, a crash) are written out at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import MIN_REAL_CLOUD_INTERVAL_S, NaviLinkConfig
from ..errors import ConfigurationError, InvalidCredentialsError, NaviLinkError, StoreError
from ..storage import Location
from .accounts import collector_accounts
from .fleet import FleetClient
from .logs import setup_logging
from .scheduler import Collector, SimTime, rejected_message
from .shard import Shard
from .stats import CollectorStats
from .store import Store

log = logging.getLogger("navilink_etl.collect")

STATUS_LINE_EVERY_S = 60.0
AUTH_BACKOFF_MAX_S = 300.0

# (config) -> async context yielding (config to use, clock or None, mode)
CloudFactory = Callable[[NaviLinkConfig], AbstractAsyncContextManager[tuple[NaviLinkConfig, Any, str]]]


async def run_collector(config: NaviLinkConfig, *, interval: float | None = None,
                        duration_min: float | None = None, debug: bool = False,
                        status_line: bool | None = None, adaptive: bool = False, seed: int = 0,
                        flush_every_s: float = 60.0, cloud: CloudFactory | None = None,
                        refresh: Callable[[], Any] | None = None, shard: str | None = None) -> CollectorStats:
    """Collect until SIGINT/SIGTERM or ``duration_min`` real minutes; returns the run's statistics.

    ``interval`` is in the device's clock seconds (default ``config.polling_interval``). ``cloud``
    replaces the real cloud (see the module docstring); ``refresh`` is called in a worker thread
    every ``config.refresh_minutes`` to keep the warehouse marts fresh. ``stats.fatal`` is set when
    the run stopped on an error that must not be retried (a rejected password). ``shard`` ("K/N")
    overrides ``config.shard``.
    """
    if shard is not None:
        config = config.model_copy(update={"shard": str(Shard.parse(shard))})
    teardown = setup_logging(config.local_dir, config.log_level, debug=debug)
    try:
        if cloud is None:
            if config.is_embedded:
                raise ConfigurationError("no NaviLink credentials: set NAVILINK_EMAIL and NAVILINK_PASSWORD "
                                         "(the `navilink-etl collect` command runs the embedded simulator "
                                         "without them)")
            log.info("Collecting from the real NaviLink cloud as %s into %s%s", config.email or "the accounts file",
                     config.data_dir, f" (shard {config.shard})" if config.shard else "")
            return await run_collection(config, interval=interval, duration_min=duration_min, clock=None,
                                        mode="cloud", status_line=status_line, adaptive=adaptive,
                                        seed=seed, flush_every_s=flush_every_s, refresh=refresh)
        if config.shard is not None or config.accounts_file is not None:
            raise ConfigurationError("--shard / NAVILINK_SHARD and NAVILINK_ACCOUNTS_FILE need the real "
                                     "cloud: set NAVILINK_EMAIL/NAVILINK_PASSWORD or the accounts file")
        async with cloud(config) as (cfg, clock, mode):
            return await run_collection(cfg, interval=interval, duration_min=duration_min,
                                        clock=clock, mode=mode, status_line=status_line,
                                        adaptive=adaptive, seed=seed, flush_every_s=flush_every_s,
                                        refresh=refresh)
    finally:
        teardown()


async def run_collection(config: NaviLinkConfig, *, interval: float | None, duration_min: float | None,
                         clock: Any | None, mode: str, status_line: bool | None = None,
                         adaptive: bool = False, seed: int | None = None,
                         flush_every_s: float = 60.0, stop: asyncio.Event | None = None,
                         ready: asyncio.Event | None = None, refresh: Callable[[], Any] | None = None,
                         refresh_every_s: float | None = None, compact_every_s: float = 900.0,
                         stats: CollectorStats | None = None) -> CollectorStats:
    """The collector proper against whatever cloud ``config`` points at (real or fake).

    ``clock`` (the fake cloud's ``SimClock``) maps arrival stamps onto simulated time; ``stop``
    lets a caller end the run; ``ready`` is set once devices are listed and polls scheduled.
    ``refresh`` runs every ``refresh_every_s`` real seconds (default NAVILINK_REFRESH_MINUTES).
    ``stats``: an object to fill (a benchmark watches it live); a new one by default.
    """
    shard = Shard.parse(config.shard, setting="NAVILINK_SHARD")
    accounts = collector_accounts(config)
    if not accounts:
        raise ConfigurationError("no NaviLink account: set NAVILINK_EMAIL and NAVILINK_PASSWORD, or "
                                 "NAVILINK_ACCOUNTS_FILE")
    iv = float(interval if interval is not None else config.polling_interval)
    if iv <= 0:
        raise ConfigurationError(f"poll interval must be positive, got {iv:g}")
    if config.is_real_cloud and iv < MIN_REAL_CLOUD_INTERVAL_S:
        raise ConfigurationError(f"poll interval {iv:g} s is below {MIN_REAL_CLOUD_INTERVAL_S} s, the floor "
                                 "for the shared real cloud; use --interval 30 or more")
    every = refresh_every_s if refresh_every_s is not None else config.refresh_minutes * 60.0
    stop = stop or asyncio.Event()
    stats = stats or CollectorStats()  # a caller's own object lets it watch the run live
    stats.mode, stats.interval_s, stats.started_at = mode, iv, datetime.now(UTC)
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    # its own spool and file names: N collectors (and the next configuration's) share no lock
    writer = None if shard.n == 1 else shard.label
    await asyncio.to_thread(drain_idle_spools, config.location, config.spool_path, writer)
    # replays the spool: not on the loop
    store = await asyncio.to_thread(functools.partial(Store, config.location, spool_dir=config.spool_path,
                                                      writer=writer))
    handlers = _install_signals(loop, stop)
    collector: Collector | None = None
    publisher: Any = None  # the Home Assistant sink, when configured
    try:
        # a message addressed to another collector waits two poll intervals (collect.fleet)
        hold_s = max(2.0, 2.0 * SimTime(clock).real_s(iv))
        async with FleetClient(config, accounts, shard, hold_s=hold_s) as client:
            publisher = await _start_publisher(client, config)
            collector = Collector(client, store, stats, interval_s=iv, time=SimTime(clock),
                                  source="fake-cloud" if clock is not None else "cloud",
                                  request_timeout=config.request_timeout, adaptive=adaptive,
                                  flush_every_s=flush_every_s, on_fatal=lambda _m: stop.set(), seed=seed,
                                  refresh=refresh, refresh_every_s=every, compact_every_s=compact_every_s)
            if await _authenticate(client, collector, stop):
                await collector.start()
                if ready is not None:
                    ready.set()
                await _wait(stop, duration_min, stats, collector, status_line)
            await collector.stop()
    except InvalidCredentialsError as exc:
        stats.fatal = rejected_message(exc)
    finally:
        if publisher is not None:
            await publisher.stop()
        _remove_signals(loop, handlers)
        if collector is not None:
            stats.events = collector.events.count
        stats.files_written = store.stats.files_written
        stats.bytes_written = store.stats.bytes_written
        try:
            await asyncio.to_thread(store.close)
        except Exception as exc:  # e.g. the disk is still full: the spool keeps the rows
            log.error("closing the store: %s; the spool keeps what was not written and the next "
                      "start writes it", exc)
        stats.stopped_at = datetime.now(UTC)
        stats.uptime_s = time.monotonic() - t0
    _print_summary(stats)
    return stats


def drain_idle_spools(location: Location, spool_root: Path, mine: str | None) -> int:
    """Write out the spools under ``spool_root`` no running collector holds (the spool itself and
    every ``<writer>/`` in it but ``mine``) into ``location``: rows a shard left behind when N
    changed or it crashed are not lost. Returns how many spools were drained; a spool in use is
    skipped silently."""
    root = Path(spool_root)
    if not root.is_dir():
        return 0
    writers: list[str | None] = [None] if (root / "spool.sqlite").exists() and mine is not None else []
    writers += [d.name for d in sorted(root.iterdir())
                if d.is_dir() and d.name != mine and (d / "spool.sqlite").exists()]
    drained = 0
    for w in writers:
        try:
            other = Store(location, spool_dir=root, writer=w, replay=False)
        except StoreError:
            continue  # in use by a running collector, or not a writer folder
        try:
            n = other.pending()
            if n:
                other.flush()
                drained += 1
                log.warning("wrote %d row(s) left in the idle spool %s to Parquet", n, other.spool_dir)
        finally:
            other.close(flush=False)
    return drained


async def _start_publisher(client: Any, config: NaviLinkConfig) -> Any:
    """The Home Assistant sink when NAVILINK_PUBLISH_URL / --publish is set (it listens to the
    client's messages itself), else None."""
    if config.publish_url is None:
        return None
    from ..homeassistant.bridge import HomeAssistantBridge

    bridge = HomeAssistantBridge(client, config)
    await bridge.start()
    return bridge


async def _authenticate(client: Any, collector: Collector, stop: asyncio.Event) -> bool:
    """Sign in; a rejected password is final, anything else is retried with backoff and jitter."""
    attempt = 0
    while not stop.is_set():
        try:
            await client.authenticate()
            collector.events.ok("auth", None, "signed_in")
            return True
        except InvalidCredentialsError as exc:
            collector._fatal(rejected_message(exc))
            return False
        except NaviLinkError as exc:
            attempt += 1
            collector.stats.failures["sign_in"] += 1
            collector.events.fail("auth", None, "sign_in_failed", f"{type(exc).__name__}: {exc}")
            delay = min(2.0 ** attempt, AUTH_BACKOFF_MAX_S) * collector.rng.uniform(0.5, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    return False


async def _wait(stop: asyncio.Event, duration_min: float | None, stats: CollectorStats,
                collector: Collector, status_line: bool | None) -> None:
    deadline = None if duration_min is None else time.monotonic() + duration_min * 60.0
    tty = sys.stderr.isatty() if status_line is None else status_line
    live = _live() if tty else None
    last_line = time.monotonic()
    try:
        while not stop.is_set():
            step = 0.5 if live is not None else 1.0
            if deadline is not None:
                step = min(step, max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), step)
            if deadline is not None and time.monotonic() >= deadline:
                log.info("duration of %g min reached: stopping", duration_min)
                break
            if live is not None:
                live.update(_status_text(stats, collector))
            elif time.monotonic() - last_line >= STATUS_LINE_EVERY_S:
                last_line = time.monotonic()
                log.info("%s", _status_text(stats, collector))
    finally:
        if live is not None:
            live.stop()


def _live() -> Any:
    from rich.console import Console
    from rich.live import Live

    live = Live("", console=Console(stderr=True), refresh_per_second=2, transient=True)
    live.start()
    return live


def _status_text(stats: CollectorStats, collector: Collector) -> str:
    ok, failed = sum(stats.polls_ok.values()), sum(stats.polls_failed.values())
    now = collector.time.now().strftime("%Y-%m-%d %H:%M:%S")
    mqtt = "MQTT down" if collector.events.is_open("mqtt") else "MQTT up"
    failing = sum(1 for s in collector.states.values() if s.failures)
    return (f"[{now} UTC{' sim' if stats.mode == 'embedded' else ''}] {len(collector.states)} device(s), "
            f"{failing} failing, {mqtt} | polls {ok} ok / {failed} failed | "
            f"{sum(stats.samples.values())} samples, {stats.quarantined} quarantined, "
            f"{collector.ingest.buffered} waiting for the spool"  # from memory: no SQLite read on the loop
            + (" (STORE FAILING)" if collector.ingest.failing else ""))


def _install_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    installed: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signal support: duration/stop still work
    return installed


def _remove_signals(loop: asyncio.AbstractEventLoop, sigs: list[int]) -> None:
    for sig in sigs:
        with contextlib.suppress(Exception):
            loop.remove_signal_handler(sig)


def _print_summary(stats: CollectorStats) -> None:
    """Into the log (console and file); printed as well when the log would not show INFO."""
    text = stats.summary()
    log.info("final statistics\n%s", text)
    if not log.isEnabledFor(logging.INFO):
        print(text, flush=True)
