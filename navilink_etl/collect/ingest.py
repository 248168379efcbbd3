"""Every MQTT message: parsed once, identity checked, redeliveries dropped, spooled off the loop.

Spool writes (and their fsync), events and quarantine go through one worker thread, in order; the
event loop only fills bounded buffers. While the store cannot write (disk full) one writer task
retries with backoff, new samples beyond the buffer are counted as dropped, and events record
when writing stopped and when it recovered.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from time import monotonic
from typing import Any

import orjson

from ..errors import PayloadError
from ..identity import is_mac
from ..protocol import mac_from_topic
from ..status import (
    DeviceStatus,
    Envelope,
    message_kind,
    parse_message,
    parse_status_object,
    status_row,
)
from .events import Kind
from .stats import CollectorStats
from .store import Store

log = logging.getLogger("navilink_etl.collect")

SPOOL_EVERY_S = 0.25  # buffered rows reach the fsync'd spool at least this often
SPOOL_BATCH = 500  # ... and as soon as this many are waiting
MAX_BUFFERED_SAMPLES = 50_000  # beyond this (store down for long) new samples are dropped, counted
MAX_BUFFERED_EVENTS = 5_000
MAX_BUFFERED_QUARANTINE_BYTES = 32_000_000
RETRY_MIN_S, RETRY_MAX_S = 0.25, 10.0
STOP_ATTEMPTS = 3  # final spool attempts at shutdown while the store is failing
# Redelivery memory: the last keys of each device. A QoS 1 redelivery arrives within a few
# messages of the original whatever the delay; a genuinely new message differs in content or in
# its sessionID (replies echo our ms-epoch request id, pushes carry the device's own counter).
MAX_PAYLOAD_BYTES = 1_000_000  # a status is ~3 KB, a year of energy history ~25 KB
QUARANTINE_RAW_BYTES = 65_536  # of an oversized message, this much is kept as evidence
DEDUP_KEEP = 64
DEDUP_DEVICES = 10_000


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, also when wrapped in a StoreError or SQLite's "database or disk is full"."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text or "quota exceeded" in text


@dataclass
class _Pending:
    """What waits for the writer: status rows, quarantine entries and events, in arrival order."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    quarantine_bytes: int = 0

    def __len__(self) -> int:
        return len(self.rows) + len(self.quarantine) + len(self.events)


class Dedup:
    """Recent (content hash, sessionID, clientID) keys per device: a bounded redelivery memory."""

    def __init__(self, keep: int = DEDUP_KEEP, devices: int = DEDUP_DEVICES) -> None:
        self.keep, self.devices = keep, devices
        self._seen: OrderedDict[str, tuple[deque[tuple[Any, ...]], set[tuple[Any, ...]]]] = OrderedDict()

    def seen(self, mac: str, key: tuple[Any, ...]) -> bool:
        """True when ``key`` was seen recently for ``mac``; otherwise remember it."""
        entry = self._seen.get(mac)
        if entry is None:
            entry = self._seen[mac] = (deque(), set())
            if len(self._seen) > self.devices:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(mac)
        order, keys = entry
        if key in keys:
            return True
        order.append(key)
        keys.add(key)
        if len(order) > self.keep:
            keys.discard(order.popleft())
        return False

    def __len__(self) -> int:
        return sum(len(k) for _, k in self._seen.values())


class Ingest:
    """Parse, validate, deduplicate and buffer messages; one writer task spools them in order."""

    def __init__(self, store: Store, stats: CollectorStats, *, source: str,
                 stamp: Callable[[datetime], datetime], now: Callable[[], datetime],
                 on_sample: Callable[[str, DeviceStatus], None] | None = None,
                 max_samples: int = MAX_BUFFERED_SAMPLES) -> None:
        self.store = store
        self.stats = stats
        self.source = source
        self.stamp = stamp
        self.now = now
        self.on_sample = on_sample
        self.max_samples = max_samples
        self.dedup = Dedup()
        self._buf = _Pending()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="navilink-spool")
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._drain_lock = asyncio.Lock()
        self._closing = False
        self._failing_since: float | None = None
        self._failing_at: datetime | None = None
        self._failures = 0
        self._dropping = False

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="collector-spool")

    async def stop(self) -> None:
        """Spool everything still buffered (a few attempts if the store is failing), then end."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        for attempt in range(STOP_ATTEMPTS):
            if not len(self._buf) or await self.drain():
                break
            await asyncio.sleep(RETRY_MIN_S * 2 ** attempt)
        if len(self._buf):
            self.stats.lost += len(self._buf.rows)
            log.error("stopping with the store still failing: %d status row(s), %d event(s) and %d "
                      "quarantined message(s) could not be written", len(self._buf.rows),
                      len(self._buf.events), len(self._buf.quarantine))
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)

    @property
    def buffered(self) -> int:
        return len(self._buf.rows)

    @property
    def failing(self) -> bool:
        return self._failing_since is not None

    # --- messages ---------------------------------------------------------------------------
    def on_message(self, topic: str, payload: bytes, received_at: datetime) -> Envelope | None:
        """Every MQTT message (on the loop): store status snapshots, quarantine bad ones.

        Returns the parsed envelope, which the MQTT session reuses to match the reply to its request.
        """
        try:
            return self._on_message(topic, payload, received_at)
        except Exception:
            log.exception("message from %s could not be handled", topic)
            return None

    def _on_message(self, topic: str, payload: bytes, received_at: datetime) -> Envelope | None:
        at = self.stamp(received_at)
        topic_mac = mac_from_topic(topic)
        topic_mac = topic_mac if is_mac(topic_mac) else None
        if len(payload) > MAX_PAYLOAD_BYTES:
            self.quarantine(topic, payload[:QUARANTINE_RAW_BYTES], at, topic_mac,
                            f"message of {len(payload):,} bytes exceeds {MAX_PAYLOAD_BYTES:,} bytes "
                            f"(first {QUARANTINE_RAW_BYTES:,} kept)")
            return None
        try:
            obj = orjson.loads(payload)  # the only decode of this message
        except orjson.JSONDecodeError as exc:
            self.quarantine(topic, payload, at, topic_mac, f"not JSON: {exc}")
            return None
        if isinstance(obj, dict) and "request" in obj and "response" not in obj:
            return None  # our own request, echoed back by the device-wide subscription
        try:
            env = parse_message(obj)
            if env.kind != "status":
                return env  # DID, energy and reservation replies are consumed by the requests
            st = _status(env, payload, at)
        except PayloadError as exc:
            self.quarantine(topic, payload, at, topic_mac, exc.message)
            return None
        if topic_mac is None:
            self.quarantine(topic, payload, at, None, f"topic {topic[:80]!r} names no valid device MAC")
            return env
        if st.mac is not None and st.mac != topic_mac:
            self.quarantine(topic, payload, at, topic_mac,
                            f"body macAddress {st.mac[:40]!r} differs from the topic's {topic_mac}")
            return env
        if self._accept(topic_mac, st, at) and st.raw.unknown:
            # kept (the marker is in extra_json), but flagged for review with the field and value
            marks = ", ".join(f"{k}={v}" for k, v in sorted(st.raw.unknown.items()))
            self.quarantine(topic, payload, at, topic_mac,
                            f"stored with 'unknown' markers read as null: {marks}"[:500])
        return env

    def _accept(self, mac: str, st: DeviceStatus, at: datetime) -> bool:
        """Buffer one sample; False for a redelivery or when the buffer is full."""
        row = status_row(st, received_at=at, source=self.source, device=mac)
        if self.dedup.seen(mac, (row["content_hash"], st.session_id, st.client_id)):
            self.stats.duplicates += 1
            return False
        if not self._admit():
            return False
        self._buf.rows.append(row)
        self.stats.samples[mac] += 1
        if st.kind == "reply":
            self.stats.replies[mac] += 1
        if self.on_sample is not None:
            self.on_sample(mac, st)
        if len(self._buf.rows) >= SPOOL_BATCH and not self.failing:
            self._wake.set()
        return True

    def _admit(self) -> bool:
        """Room for one more sample? If not, count it as dropped (one event per episode)."""
        if len(self._buf.rows) < self.max_samples:
            if self._dropping:
                self._dropping = False
                log.warning("sample buffer has room again (%d dropped so far)", self.stats.dropped)
            return True
        self.stats.dropped += 1
        if not self._dropping:
            self._dropping = True
            self._emit(Kind.SAMPLES_DROPPED, detail=f"{self.max_samples} samples wait for the store; "
                       "new samples are dropped until it writes again", severity="error")
        return False

    def quarantine(self, topic: str, payload: bytes, at: datetime, mac: str | None, reason: str) -> None:
        """Keep a message that failed checks, with the reason (written by the worker thread)."""
        self.stats.quarantined += 1
        if self._buf.quarantine_bytes + len(payload) > MAX_BUFFERED_QUARANTINE_BYTES:
            self.stats.dropped_quarantine += 1
            log.warning("quarantine buffer full: a bad message from %s is only logged: %s", topic, reason)
            return
        self._buf.quarantine.append(dict(reason=reason, raw=payload, source=self.source, topic=topic,
                                         device=mac, received_at=at))
        self._buf.quarantine_bytes += len(payload)
        self._emit(Kind.MALFORMED, device=mac, detail=f"quarantined: {reason}", severity="warning")

    def event(self, kind: str, *, device: str | None = None, detail: str = "", severity: str = "warning",
              duration_s: float | None = None, at: datetime | None = None) -> None:
        """Queue one event for the store (the caller has logged it)."""
        if len(self._buf.events) >= MAX_BUFFERED_EVENTS:
            self.stats.dropped_events += 1
            return
        self._buf.events.append(dict(kind=kind, device=device, detail=detail, severity=severity,
                                     duration_s=duration_s, at=at or self.now()))

    def _emit(self, kind: str, *, device: str | None = None, detail: str, severity: str,
              duration_s: float | None = None) -> None:
        level = {"info": logging.INFO, "warning": logging.WARNING}.get(severity, logging.ERROR)
        log.log(level, "%s%s: %s", kind.replace("_", " "), f" [{device}]" if device else "", detail)
        self.event(kind, device=device, detail=detail, severity=severity, duration_s=duration_s)

    # --- writing ----------------------------------------------------------------------------
    async def _run(self) -> None:
        """The one writer task: spool on a timer or when woken; back off while the store fails."""
        while not self._closing:
            delay = SPOOL_EVERY_S if not self.failing else min(
                RETRY_MAX_S, RETRY_MIN_S * 2 ** min(self._failures, 10))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # no helper task, unlike wait_for
                    await self._wake.wait()
            self._wake.clear()
            if not self._closing:
                await self.drain()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a store call on the writer thread, after everything queued before it."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def drain(self) -> bool:
        """Write what is buffered now (worker thread); True when it all reached the spool."""
        async with self._drain_lock:  # the writer task, a flush and stop() may all call this
            return await self._drain()

    async def _drain(self) -> bool:
        if not len(self._buf):
            return True
        b = self._buf
        nq, ne, nr = len(b.quarantine), len(b.events), len(b.rows)
        work = (b.quarantine[:nq], b.events[:ne], b.rows[:nr])
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._write, *work)
        except Exception as exc:
            self._failed(exc)
            return False
        # only a drain removes rows (one at a time); messages that arrived meanwhile come after them
        del b.quarantine[:nq], b.events[:ne], b.rows[:nr]
        b.quarantine_bytes = sum(len(q["raw"]) for q in b.quarantine)
        if self.failing:
            self._recovered()
        return True

    def _write(self, quarantine: list[dict[str, Any]], events: list[dict[str, Any]],
               rows: list[dict[str, Any]]) -> None:
        """Worker thread. Every spool key is idempotent, so a retry after a partial write is safe."""
        for q in quarantine:
            self.store.quarantine(**q)
        for e in events:
            self.store.append_event(e["kind"], device=e["device"], detail=e["detail"],
                                    severity=e["severity"], duration_s=e["duration_s"], at=e["at"])
        if rows:
            self.store.append_status(rows)

    def _failed(self, exc: BaseException) -> None:
        self._failures += 1
        if self._failing_since is not None:
            log.debug("store still failing (%d attempts): %s", self._failures, exc)
            return
        self._failing_since, self._failing_at = monotonic(), self.now()
        kind = Kind.DISK_FULL if is_disk_full(exc) else Kind.STORE_FAILED
        self.stats.failures[kind] += 1
        detail = (f"{exc}; {len(self._buf.rows)} sample(s) held in memory (at most "
                  f"{self.max_samples}), retrying until it writes again")
        self._emit(kind, detail=detail, severity="error")

    def _recovered(self) -> None:
        assert self._failing_since is not None and self._failing_at is not None
        real = monotonic() - self._failing_since
        dur = max(0.0, (self.now() - self._failing_at).total_seconds())
        detail = (f"the store writes again after {real:.1f} s ({self._failures} attempt(s)); "
                  f"{self.stats.dropped} sample(s) dropped meanwhile")
        self._failing_since = self._failing_at = None
        self._failures = 0
        self._emit(Kind.STORE_RECOVERED, detail=detail, severity="warning", duration_s=dur)
        self._wake.set()  # the recovery event itself


def _status(env: Envelope, payload: bytes, at: datetime) -> DeviceStatus:
    """The status snapshot of an already parsed envelope (what ``status.parse_status`` does from bytes)."""
    rs = parse_status_object(env.response["status"], payload)
    return DeviceStatus(raw=rs, mac=env.mac, received_at=at, session_id=env.session_id,
                        client_id=env.client_id, kind=message_kind(rs.values["command"] or 0))
