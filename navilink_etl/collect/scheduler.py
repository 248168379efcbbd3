"""The collector's jobs on an APScheduler ``AsyncIOScheduler``: decides *when*, never how to parse or store.

Jobs: one status poll per device at the interval (``max_instances=1``, ``coalesce``), the daily
energy history (the first run backfills 12 months, one request per year), the device-list
refresh, flush/compaction of the store and (optionally) the warehouse refresh. Every MQTT message
is stored by ``ingest.Ingest`` from the client's message listener (replies, pushes and control
echoes alike); polls only ask for them.

Times: the interval is in the device's clock. On the embedded default that clock runs ``speed``
times faster than real time, so jobs fire every ``interval / speed`` real seconds and arrival
stamps are mapped onto simulated time (``SimTime``), which keeps data aligned with the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from time import monotonic
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..config import MIN_REAL_CLOUD_INTERVAL_S
from ..errors import (
    APIError,
    AuthenticationError,
    DeviceOfflineError,
    InvalidCredentialsError,
    NaviLinkConnectionError,
    NaviLinkError,
    PayloadError,
    RequestTimeoutError,
)
from ..identity import is_mac
from ..status import DeviceStatus
from .events import EventRecorder, Kind
from .ingest import Ingest
from .stats import CollectorStats
from .store import Store

log = logging.getLogger("navilink_etl.collect")

DEVICE_REFRESH_S = 3600.0  # device-list refresh, device-clock seconds
ENERGY_EVERY_S = 86_400.0  # energy history, device-clock seconds
BACKFILL_MONTHS = 12
COMPACT_MIN_FILES = 12  # periodic compaction merges partitions with at least this many files
BACKOFF_CAP_INTERVALS = 0.95  # a failing device skips at most one poll: it resumes within 2 intervals
# A poll is abandoned this long after its request timeout. The client's timeout covers publish and
# reply; this outer bound also covers a first connect made inside the same call.
POLL_GRACE_S = 0.5


class SimTime:
    """The collector's clock: real UTC, or the fake cloud's simulated clock (``clock.now()``)."""

    def __init__(self, clock: Any | None = None) -> None:
        self.clock = clock
        self.speed = float(getattr(clock, "speed", 1.0)) if clock is not None else 1.0

    def now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    def stamp(self, received_real: datetime) -> datetime:
        """An arrival stamp taken on the real clock, on this clock."""
        if self.clock is None:
            return received_real
        lag = (datetime.now(UTC) - received_real).total_seconds()
        return self.clock.now() - timedelta(seconds=max(0.0, lag) * self.speed)

    def real_s(self, device_s: float) -> float:
        return device_s / self.speed


@dataclass
class DeviceState:
    device: Any  # cloud.NaviLinkDevice
    failures: int = 0
    next_try: float = 0.0  # loop time before which polls are skipped (backoff)
    fast: bool = False
    rest_offline: bool = False
    backfilled: bool = False
    energy_failures: int = 0


class Collector:
    """Schedules polls and housekeeping for one client and one store."""

    def __init__(self, client: Any, store: Store, stats: CollectorStats, *, interval_s: float,
                 time: SimTime, source: str, request_timeout: float, adaptive: bool = False,
                 flush_every_s: float = 60.0, compact_every_s: float = 900.0,
                 on_fatal: Callable[[str], None] | None = None, seed: int | None = None,
                 refresh: Callable[[], Any] | None = None, refresh_every_s: float = 0.0) -> None:
        self.client = client
        self.store = store
        self.stats = stats
        self.interval_s = float(interval_s)
        self.time = time
        self.source = source
        self.adaptive = adaptive
        self.flush_every_s = flush_every_s
        self.compact_every_s = compact_every_s
        self.on_fatal = on_fatal
        self.rng = random.Random(seed)
        self.ingest = Ingest(store, stats, source=source, stamp=time.stamp, now=time.now,
                             on_sample=self._on_sample)
        self.events = EventRecorder(self.ingest.event, time.now)
        self.refresher = Refresher(refresh, self) if refresh is not None and refresh_every_s > 0 else None
        self.refresh_every_s = refresh_every_s
        self.states: dict[str, DeviceState] = {}
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduled: dict[str, datetime] = {}
        self._running: dict[asyncio.Task[Any], str] = {}  # job task -> "request" or "housekeeping"
        self._skipped: set[str] = set()  # device-list entries already reported as unusable
        self._stopping = False
        self._jobs_ready = False  # per-device jobs start once MQTT is up (see start)
        self._detach: list[Callable[[], None]] = []
        real = time.real_s(self.interval_s)
        self.request_timeout = max(0.5, min(request_timeout, real * 0.9))
        self.on_time_tolerance_s = max(1.0, 0.05 * real)

    # --- lifecycle --------------------------------------------------------------------------
    @property
    def real_interval(self) -> float:
        return self.time.real_s(self.interval_s)

    async def start(self) -> None:
        """Attach listeners, list devices and start the scheduler (inside the running loop)."""
        self.ingest.start()
        self._detach = [self.client.add_message_listener(self.ingest.on_message),
                        self.client.add_connection_listener(self.on_connection)]
        s = self.scheduler
        s.add_listener(self._on_job_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED |
                       EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR)
        s.start()
        self.events.emit(Kind.STARTED, detail=f"{self.stats.mode}; poll every {self.interval_s:g} s "
                         f"({self.real_interval:g} s real)")
        await self.refresh_devices()  # devices known, no polls yet
        await self._connect()  # one connection and every subscription before the first poll
        self._jobs_ready = True
        n = len(self.states)
        for i, mac in enumerate(list(self.states)):
            self._schedule_device(mac, slot=i / max(n, 1))
        now = datetime.now(UTC)
        every = max(self.time.real_s(DEVICE_REFRESH_S), 1.0)
        s.add_job(self.refresh_devices, IntervalTrigger(seconds=every, start_date=now + timedelta(seconds=every)),
                  id="devices", max_instances=1, coalesce=True, misfire_grace_time=60)
        s.add_job(self.flush, IntervalTrigger(seconds=self.flush_every_s), id="flush",
                  max_instances=1, coalesce=True, misfire_grace_time=60)
        s.add_job(self.compact, IntervalTrigger(seconds=self.compact_every_s), id="compact",
                  max_instances=1, coalesce=True, misfire_grace_time=60)
        if self.refresher is not None:  # real seconds: the warehouse's readers live in real time
            s.add_job(self.refresher.run, IntervalTrigger(seconds=self.refresh_every_s), id="refresh",
                      max_instances=1, coalesce=True, misfire_grace_time=None)

    async def stop(self) -> None:
        """Stop scheduling, let running jobs finish (polls bounded), then spool and flush everything.

        Order matters: the scheduler is paused first and every job it started is awaited before it
        is shut down, so no job is cancelled mid-flight (APScheduler logs that as a traceback).
        """
        self._stopping = True
        with contextlib.suppress(Exception):
            self.scheduler.pause()
        t0 = monotonic()
        me = asyncio.current_task()
        running = [t for t in self._running if not t.done() and t is not me]
        polls = [t for t in running if self._running.get(t) == "request"]
        house = [t for t in running if self._running.get(t) != "request"]
        pending: set[asyncio.Task[Any]] = set()
        if polls:  # every request is bounded by its timeout; give them that long, then move on
            _, pending = await asyncio.wait(polls, timeout=self.request_timeout + 2 * POLL_GRACE_S)
        if house:  # flush, compaction, refresh: in worker threads, which cannot be interrupted
            log.info("stopping: waiting for %d housekeeping job(s) (flush, compaction, refresh)", len(house))
            await asyncio.wait(house)
        log.info("stopping: %d running job(s) finished, %d cut short (%.1f s)",
                 len(running) - len(pending), len(pending), monotonic() - t0)
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=False)  # cancels the requests still waiting: they return quietly
        if pending:
            await asyncio.wait(pending, timeout=2.0)
        for detach in self._detach:  # nothing arrives after the last spool write below
            detach()
        for o in list(self.events.open):
            scope, dev = o
            out = self.events.open[o]
            self.events.emit(Kind.STOPPED if scope == "collector" else out.kind, device=dev,
                             detail=f"still failing at shutdown ({out.failures} failure(s))",
                             duration_s=(self.time.now() - out.started).total_seconds())
        self.events.open.clear()
        self.events.emit(Kind.STOPPED, detail=f"{sum(self.stats.samples.values())} samples")
        await self.ingest.stop()
        t1 = monotonic()
        try:
            await asyncio.to_thread(self.store.flush)
            t2 = monotonic()
            merged = await asyncio.to_thread(self.store.compact, min_files=2)
            log.info("stopping: flushed in %.1f s, compacted %d partition(s) in %.1f s",
                     t2 - t1, merged, monotonic() - t2)
        except Exception as exc:  # the spool keeps the rows; the next start flushes them
            log.error("stopping: flush to Parquet failed (%s); the rows stay in the spool for the next start",
                      exc)
        self._sync_store_stats()

    async def _connect(self) -> None:
        """Open MQTT and subscribe every device once, before the first polls (no subscribe storm)."""
        try:
            t0 = monotonic()
            await self.client.connect()
            log.info("MQTT connected with %d device subscription(s) in %.1f s", len(self.states),
                     monotonic() - t0)
        except InvalidCredentialsError as exc:
            self._fatal(rejected_message(exc))
        except NaviLinkError as exc:
            # polls retry the connection on their own; the outage is recorded until it works
            self.events.fail("mqtt", None, Kind.MQTT_DOWN, f"first connection failed: {exc}")

    def _track(self, kind: str = "housekeeping") -> None:
        """Remember the running job's task so stop() can await it (requests: bounded wait)."""
        task = asyncio.current_task()
        if task is not None and task not in self._running:
            self._running[task] = kind
            task.add_done_callback(lambda t: self._running.pop(t, None))

    def _fatal(self, message: str) -> None:
        if self.stats.fatal is None:
            self.stats.fatal = message
            self.events.emit(Kind.AUTH_FAILED, detail=message, severity="error")
            log.error("%s", message)
            if self.on_fatal is not None:
                self.on_fatal(message)

    def _on_job_event(self, ev: JobEvent) -> None:
        jid = ev.job_id
        if isinstance(ev, JobSubmissionEvent):
            if ev.scheduled_run_times:
                self._scheduled[jid] = ev.scheduled_run_times[-1]
            return
        if isinstance(ev, JobExecutionEvent) and ev.exception is not None:
            if self._stopping and isinstance(ev.exception, asyncio.CancelledError):
                return  # cut short by the shutdown
            log.error("job %s failed: %r", jid, ev.exception)
            return
        if jid.startswith("poll:"):  # missed, or the previous poll was still running
            self._scheduled.pop(jid, None)
            self.stats.polls_missed += 1
            self.stats.polls_scheduled[jid[5:]] += 1

    # --- devices ----------------------------------------------------------------------------
    async def refresh_devices(self) -> None:
        """List devices; add/remove their jobs. Failures are events, retried with backoff; one bad
        entry is skipped (with an event) and the others go on."""
        self._track()
        try:
            devices = await self.client.get_devices()
        except InvalidCredentialsError as exc:
            self._fatal(rejected_message(exc))
            return
        except asyncio.CancelledError:
            if self._stopping:
                return
            raise
        except Exception as exc:  # NaviLinkError, or anything a malformed list makes the client raise
            self.stats.failures["device_list"] += 1
            self.events.fail("rest", None, Kind.REST_ERROR, f"device list: {type(exc).__name__}: {exc}")
            n = self.events.open[("rest", None)].failures if self.events.is_open("rest") else 1
            delay = min(2.0 ** n, max(self.real_interval, 5.0)) * self.rng.uniform(0.5, 1.0)
            if not self._stopping:
                self.scheduler.add_job(self.refresh_devices, DateTrigger(datetime.now(UTC) + timedelta(seconds=delay)),
                                       id="devices-retry", replace_existing=True)
            return
        self.events.ok("rest", None, Kind.REST_RECOVERED)
        seen: dict[str, Any] = {}
        for dev in devices:
            mac = getattr(dev, "mac", None)
            if not isinstance(mac, str) or not is_mac(mac):
                self._skip(repr(mac)[:40], f"device-list entry without a valid MAC ({repr(mac)[:40]})")
            elif mac not in seen:
                seen[mac] = dev
        for i, (mac, dev) in enumerate(seen.items()):
            try:
                self._follow(mac, dev, slot=i / len(seen))
            except Exception as exc:
                self._skip(mac, f"device {mac} could not be followed: {type(exc).__name__}: {exc}")
        for mac in set(self.states) - set(seen):
            self._remove_device(mac)

    def _skip(self, key: str, detail: str) -> None:
        self.stats.failures["device_skipped"] += 1
        if key not in self._skipped:  # once per entry, not at every hourly refresh
            if len(self._skipped) >= 1_000:  # a cloud sending new junk every hour: stay bounded
                self._skipped.clear()
            self._skipped.add(key)
            self.events.emit(Kind.DEVICE_SKIPPED, device=key if is_mac(key) else None, detail=detail)

    def _follow(self, mac: str, dev: Any, slot: float) -> None:
        online = bool(getattr(dev, "online", True))  # read first: a broken entry is not half added
        st = self.states.get(mac)
        if st is None:
            self._add_device(mac, dev, slot=slot)
            st = self.states[mac]
        else:
            st.device = dev
        if not online and not st.rest_offline:
            st.rest_offline = True
            self.events.emit(Kind.DEVICE_OFFLINE, device=mac, detail="the cloud lists it as disconnected")
        elif online:
            st.rest_offline = False

    def _add_device(self, mac: str, dev: Any, slot: float = 0.0) -> None:
        """Follow a new device: its jobs first, so that a failed event write cannot leave it unpolled."""
        self.states[mac] = DeviceState(dev)
        if mac not in self.stats.devices:
            self.stats.devices.append(mac)
        if self._jobs_ready:
            self._schedule_device(mac, slot)
        self.events.emit(Kind.DEVICE_ADDED, device=mac, detail=f"{getattr(dev, 'name', 'NWP500')}")

    def _schedule_device(self, mac: str, slot: float) -> None:
        now = datetime.now(UTC)
        # spread first polls over one interval so 1,000 devices do not ask at the same instant
        offset = self.real_interval * slot
        self._schedule_poll(mac, self.real_interval, start=now + timedelta(seconds=offset))
        self.scheduler.add_job(self.fetch_energy, IntervalTrigger(
            seconds=max(self.time.real_s(ENERGY_EVERY_S), 10.0),
            start_date=now + timedelta(seconds=min(1.0 + offset, self.real_interval))),
            args=[mac], id=f"energy:{mac}", max_instances=1, coalesce=True,
            misfire_grace_time=300, replace_existing=True)

    def _schedule_poll(self, mac: str, every_s: float, start: datetime | None = None) -> None:
        kw: dict[str, Any] = {"seconds": every_s}
        if start is not None:
            kw["start_date"] = start
        self.scheduler.add_job(self.poll, IntervalTrigger(**kw), args=[mac], id=f"poll:{mac}",
                               max_instances=1, coalesce=True,
                               misfire_grace_time=max(1, int(every_s / 2)), replace_existing=True)
        if start is None:  # a reschedule: run the first poll at the new cadence right away
            job = self.scheduler.get_job(f"poll:{mac}")
            if job is not None:
                job.modify(next_run_time=datetime.now(UTC))

    def _remove_device(self, mac: str) -> None:
        self.states.pop(mac, None)
        for jid in (f"poll:{mac}", f"energy:{mac}", f"energy-retry:{mac}"):
            self._scheduled.pop(jid, None)
            with contextlib.suppress(Exception):
                self.scheduler.remove_job(jid)
        newer = getattr(self.client, "handed_over", {}).get(mac)  # collect.fleet: a shard handover
        self.events.emit(Kind.DEVICE_REMOVED, device=mac,
                         detail="no longer listed on the account" if newer is None else
                         f"handed over to collector {newer} (a newer shard configuration polls it)")

    # --- polling ----------------------------------------------------------------------------
    async def poll(self, mac: str) -> None:
        self._track("request")
        st = self.states.get(mac)
        if st is None or self._stopping:
            return
        loop = asyncio.get_running_loop()
        sched = self._scheduled.pop(f"poll:{mac}", None)
        lateness = (datetime.now(UTC) - sched).total_seconds() if sched is not None else 0.0
        self.stats.polls_scheduled[mac] += 1
        self.stats.lateness_s.append(lateness)
        if loop.time() < st.next_try:
            self.stats.polls_skipped_backoff += 1
            return
        t0 = loop.time()
        try:
            # the outer bound also covers the client's own (re)connect and subscribe steps; the
            # reply itself is parsed and stored once, by the ingest (message listener)
            async with asyncio.timeout(self.request_timeout + POLL_GRACE_S):
                await st.device.request_status(timeout=self.request_timeout)
        except asyncio.CancelledError:
            if self._stopping:  # shutdown cancelled an in-flight request: not a failure
                return
            raise
        except TimeoutError:
            self._poll_failed(mac, st, RequestTimeoutError(
                f"poll of {mac} did not finish within {self.request_timeout + POLL_GRACE_S:g} s "
                "(connection being re-established?)", device=mac))
            return
        except InvalidCredentialsError as exc:
            self._fatal(rejected_message(exc))
            return
        except NaviLinkError as exc:
            self._poll_failed(mac, st, exc)
            return
        lat = loop.time() - t0
        self.stats.latencies_s.append(lat)
        self.stats.polls_ok[mac] += 1
        if lateness <= self.on_time_tolerance_s:
            self.stats.polls_on_time += 1
        self._alive(mac, st)

    def _poll_failed(self, mac: str, st: DeviceState, exc: Exception) -> None:
        kind = _failure_kind(exc)
        self.stats.polls_failed[mac] += 1
        self.stats.failures[kind] += 1
        st.failures += 1
        if kind == "mqtt" or (kind == "timeout" and not self.client.connected):
            # a connection problem, not the device's: one outage for all devices
            self.events.fail("mqtt", None, Kind.MQTT_DOWN, f"poll of {mac}: {exc}")
        else:
            self.events.fail("device", mac, Kind.POLL_FAILED, f"{kind}: {exc}")
        log.debug("poll %s failed (%s): %s", mac, kind, exc)
        if st.failures >= 2:
            skip = self.real_interval * min(2.0 ** (st.failures - 2), BACKOFF_CAP_INTERVALS)
            st.next_try = asyncio.get_running_loop().time() + skip * self.rng.uniform(0.5, 1.0)

    def _alive(self, mac: str, st: DeviceState) -> None:
        st.failures, st.next_try = 0, 0.0
        self.events.ok("device", mac, Kind.DEVICE_RECOVERED)

    # --- messages ---------------------------------------------------------------------------
    def _on_sample(self, mac: str, st: DeviceStatus) -> None:
        """A status sample was stored: a device we thought gone is back; adapt the cadence."""
        dev_state = self.states.get(mac)
        if dev_state is None:
            return
        if dev_state.failures:
            self._alive(mac, dev_state)  # a push from a device we thought was gone
        if self.adaptive:
            self._adapt(mac, dev_state, st)

    def _adapt(self, mac: str, state: DeviceState, st: DeviceStatus) -> None:
        """Poll faster while the heater heats or water is drawn; never below the floor."""
        active = any(bool(x) for x in (st.compressor_on, st.upper_element_on, st.lower_element_on, st.drawing))
        fast_s = max(float(MIN_REAL_CLOUD_INTERVAL_S), self.interval_s / 4.0)
        if fast_s >= self.interval_s or active == state.fast or self._stopping:
            return
        state.fast = active
        every = self.time.real_s(fast_s if active else self.interval_s)
        log.debug("device %s %s: polling every %g s", mac, "active" if active else "idle", every)
        self._schedule_poll(mac, every)

    def on_connection(self, event: str, detail: str) -> None:
        """MQTT connection events -> collector events; a rejected password stops the collector."""
        if event == "interrupted":
            self.events.fail("mqtt", None, Kind.MQTT_DOWN, detail or "connection lost")
        elif event in ("connected", "resumed"):
            self.events.ok("mqtt", None, Kind.MQTT_UP, detail)
        elif event == "reconnect_failed":
            self.stats.failures["mqtt_reconnect"] += 1
            self.events.emit(Kind.MQTT_RECONNECT_FAILED, detail=detail)
        elif event == "credentials_renewed":
            self.events.emit(Kind.CREDENTIALS_RENEWED, detail=detail)
        elif event == "auth_failed":
            self._fatal(rejected_message(detail))

    # --- energy history ---------------------------------------------------------------------
    async def fetch_energy(self, mac: str) -> None:
        """The device's daily history: 12 months on the first run, then this (and last) month.

        Any failure (request, a reply out of range, the store) is an event and a retry is scheduled.
        """
        self._track("request")
        st = self.states.get(mac)
        if st is None or self._stopping:
            return
        now = self.time.now()
        today = now.date()
        spans = energy_spans(today, BACKFILL_MONTHS if not st.backfilled else (2 if today.day <= 2 else 1))
        rows: list[dict[str, Any]] = []
        try:
            for year, months in spans:
                for d in await st.device.get_energy_usage(year, months, timeout=max(self.request_timeout, 2.0)):
                    try:
                        day = date(d.year, d.month, d.day)
                    except (ValueError, OverflowError):
                        continue
                    if day <= today:
                        rows.append(dict(device=mac, day=day, hp_wh=d.hp_wh, he_wh=d.he_wh, hp_h=d.hp_h,
                                         he_h=d.he_h, fetched_at=now, source=self.source))
            if rows:
                await self.ingest.run(self.store.append_energy, rows)
        except InvalidCredentialsError as exc:
            self._fatal(rejected_message(exc))
            return
        except asyncio.CancelledError:
            if self._stopping:
                return
            raise
        except Exception as exc:
            self._energy_failed(mac, st, exc)
            return
        st.energy_failures = 0
        st.backfilled = True
        self.stats.energy_days += len(rows)
        self.events.ok("energy", mac, Kind.DEVICE_RECOVERED, "energy history")
        log.info("energy history [%s]: %d day(s) for %s", mac, len(rows),
                 ", ".join(f"{y}/{m[0]}-{m[-1]}" for y, m in spans))
        await self._fetch_tou(mac, st)

    def _energy_failed(self, mac: str, st: DeviceState, exc: Exception) -> None:
        st.energy_failures += 1
        self.stats.failures["energy_" + _failure_kind(exc)] += 1
        self.events.fail("energy", mac, Kind.ENERGY_FAILED, f"energy history: {type(exc).__name__}: {exc}")
        delay = min(self.real_interval * 2.0 ** min(st.energy_failures, 20),
                    self.time.real_s(ENERGY_EVERY_S)) * self.rng.uniform(0.5, 1.0)
        if not self._stopping:
            self.scheduler.add_job(self.fetch_energy, DateTrigger(datetime.now(UTC) + timedelta(seconds=delay)),
                                   args=[mac], id=f"energy-retry:{mac}", replace_existing=True)

    async def _fetch_tou(self, mac: str, st: DeviceState) -> None:
        """The device's own TOU price plan, saved for the warehouse's tariff (daily, best effort)."""
        try:
            plan = await st.device.get_tou()
            if isinstance(plan, Mapping) and plan:
                path = await self.ingest.run(self.store.save_tou_plan, mac, plan)
                log.debug("TOU plan of %s saved to %s", mac, path)
        except InvalidCredentialsError as exc:
            self._fatal(rejected_message(exc))
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        except PayloadError as exc:  # a plan the cloud client or the store refused: kept out
            self.events.emit(Kind.TOU_REJECTED, device=mac, detail=f"TOU plan not saved: {exc}")
        except Exception as exc:  # many accounts have no plan, or get 403: not a failure
            log.debug("TOU plan of %s not read or saved: %s", mac, exc)

    # --- storage ----------------------------------------------------------------------------
    async def flush(self) -> None:
        """Spool what is buffered, then move the spool into Parquet (worker threads)."""
        self._track()
        try:
            await self.ingest.drain()
            await asyncio.to_thread(self.store.flush)
        except Exception as exc:  # disk full: the spool keeps the rows; the next flush retries
            self.stats.failures["flush"] += 1
            log.error("flush to Parquet failed: %s; the rows stay in the spool and the next flush "
                      "retries", exc)
        self._sync_store_stats()

    async def compact(self) -> None:
        self._track()
        try:
            await asyncio.to_thread(self.store.compact, min_files=COMPACT_MIN_FILES)
        except Exception as exc:
            self.stats.failures["compact"] += 1
            log.error("compaction failed: %s; retried at the next compaction", exc)
        self._sync_store_stats()

    def _sync_store_stats(self) -> None:
        self.stats.files_written = self.store.stats.files_written
        self.stats.bytes_written = self.store.stats.bytes_written
        self.stats.events = self.events.count


class Refresher:
    """The warehouse refresh job: a flush, then ``refresh()`` in a worker thread, never two at once.

    Polls go on meanwhile (the loop only awaits the thread); a failure is an event, not fatal.
    """

    def __init__(self, refresh: Callable[[], Any], collector: Collector) -> None:
        self.refresh = refresh
        self.collector = collector
        self._busy = asyncio.Lock()
        self.last_s: float | None = None

    async def run(self) -> None:
        c = self.collector
        c._track()
        if self._busy.locked() or c._stopping:
            log.info("warehouse refresh still running: skipping this one")
            return
        async with self._busy:
            await c.flush()
            t0 = monotonic()
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as exc:
                c.stats.failures["warehouse_refresh"] += 1
                c.events.fail("refresh", None, Kind.REFRESH_FAILED, f"{type(exc).__name__}: {exc}")
                return
            self.last_s = monotonic() - t0
            c.stats.refreshes += 1
            c.events.ok("refresh", None, Kind.REFRESH_RECOVERED)
            log.info("warehouse marts refreshed in %.1f s", self.last_s)


def rejected_message(exc: BaseException | str) -> str:
    """The stop message for a rejected password: what happened, that it is final, what to do."""
    text = str(exc)
    if "NAVILINK_PASSWORD" not in text:
        text += ("; not retrying, to avoid locking the account; fix NAVILINK_EMAIL / "
                 "NAVILINK_PASSWORD")
    return f"sign-in rejected, collector stopped: {text}"


def energy_spans(today: date, months: int) -> list[tuple[int, list[int]]]:
    """The last ``months`` months up to ``today`` as (year, [months]): one request per year."""
    out: dict[int, list[int]] = {}
    y, m = today.year, today.month
    for _ in range(months):
        out.setdefault(y, []).insert(0, m)
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return sorted(out.items())


def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, RequestTimeoutError):
        return "timeout"
    if isinstance(exc, DeviceOfflineError):
        return "offline"
    if isinstance(exc, NaviLinkConnectionError):
        return "mqtt"
    if isinstance(exc, APIError):
        return "rest"
    if isinstance(exc, AuthenticationError):
        return "auth"
    if isinstance(exc, PayloadError):
        return "malformed"
    return type(exc).__name__
