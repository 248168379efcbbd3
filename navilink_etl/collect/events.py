"""Collector events (what, when, which device, how long) and outage tracking, into the store.

An outage opens at the first failure of a condition (a device not answering, MQTT down, REST
failing) and closes at the next success; the closing event carries the outage length in
``duration_s``, so gaps in the data are explicit in ``events/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EventSink = Callable[..., Any]  # (kind, *, device, detail, severity, duration_s, at)

log = logging.getLogger("navilink_etl.collect")


class Kind:
    STARTED = "collector_started"
    STOPPED = "collector_stopped"
    DEVICE_ADDED = "device_added"
    DEVICE_REMOVED = "device_removed"
    DEVICE_OFFLINE = "device_offline"  # REST lists it as disconnected
    POLL_FAILED = "poll_failed"  # first failure of an outage (timeout, REST error, ...)
    DEVICE_RECOVERED = "device_recovered"  # duration_s = outage length
    MQTT_DOWN = "mqtt_disconnected"
    MQTT_UP = "mqtt_reconnected"  # duration_s = time without MQTT
    MQTT_RECONNECT_FAILED = "mqtt_reconnect_failed"
    CREDENTIALS_RENEWED = "credentials_renewed"
    AUTH_FAILED = "auth_failed"
    REST_ERROR = "rest_error"
    REST_RECOVERED = "rest_recovered"
    MALFORMED = "malformed_message"
    ENERGY_FETCHED = "energy_fetched"
    POLLS_MISSED = "polls_missed"
    DISK_FULL = "disk_full"  # the store refused a write with ENOSPC: rows wait in memory
    STORE_FAILED = "store_write_failed"  # any other write failure
    STORE_RECOVERED = "store_recovered"  # duration_s = how long nothing could be written
    SAMPLES_DROPPED = "samples_dropped"  # the buffer is full: new samples are counted, not kept
    DEVICE_SKIPPED = "device_skipped"  # a device-list entry that could not be used
    ENERGY_FAILED = "energy_failed"  # the energy history could not be read; retried
    TOU_REJECTED = "tou_plan_rejected"  # the cloud's TOU plan failed validation: not saved
    REFRESH_FAILED = "warehouse_refresh_failed"
    REFRESH_RECOVERED = "warehouse_refresh_recovered"  # duration_s = how long refreshes failed


SEVERITY = {
    Kind.POLL_FAILED: "warning", Kind.DEVICE_OFFLINE: "warning", Kind.MQTT_DOWN: "warning",
    Kind.MQTT_RECONNECT_FAILED: "warning", Kind.REST_ERROR: "warning", Kind.MALFORMED: "warning",
    Kind.AUTH_FAILED: "error", Kind.POLLS_MISSED: "warning", Kind.DISK_FULL: "error",
    Kind.STORE_FAILED: "error", Kind.SAMPLES_DROPPED: "error", Kind.DEVICE_SKIPPED: "warning",
    Kind.ENERGY_FAILED: "warning", Kind.REFRESH_FAILED: "warning", Kind.TOU_REJECTED: "warning",
}  # fmt: skip


@dataclass
class Outage:
    kind: str
    started: datetime
    detail: str
    failures: int = 1


class EventRecorder:
    """Logs events, hands them to ``write`` (the ingest's queue, or ``Store.append_event``) and
    tracks open outages. A failing ``write`` is logged, never raised: an event is not worth a job."""

    def __init__(self, write: EventSink, now: Callable[[], datetime]) -> None:
        self.write = write
        self.now = now
        self.count = 0
        self.open: dict[tuple[str, str | None], Outage] = {}

    def emit(self, kind: str, *, device: str | None = None, detail: str = "",
             duration_s: float | None = None, severity: str | None = None,
             at: datetime | None = None) -> None:
        sev = severity or SEVERITY.get(kind, "info")
        level = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[sev]
        dur = f" after {duration_s:.0f} s" if duration_s is not None else ""
        log.log(level, "%s%s%s%s", kind.replace("_", " "), f" [{device}]" if device else "",
                f": {detail}" if detail else "", dur)
        try:
            self.write(kind, device=device, detail=detail, severity=sev, duration_s=duration_s,
                       at=at or self.now())
        except Exception as exc:
            log.error("event %s could not be recorded: %s", kind, exc)
            return
        self.count += 1

    def fail(self, scope: str, device: str | None, kind: str, detail: str) -> bool:
        """Record a failure; an event is written only when this opens an outage. True if it did."""
        key = (scope, device)
        out = self.open.get(key)
        if out is not None:
            out.failures += 1
            return False
        self.open[key] = Outage(kind, self.now(), detail)
        self.emit(kind, device=device, detail=detail)
        return True

    def ok(self, scope: str, device: str | None, kind: str, detail: str = "") -> float | None:
        """Close the outage of ``(scope, device)`` if one is open; returns its length in seconds."""
        out = self.open.pop((scope, device), None)
        if out is None:
            return None
        dur = max(0.0, (self.now() - out.started).total_seconds())
        msg = f"{out.failures} failure(s) since {out.started.isoformat(timespec='seconds')} ({out.detail})"
        self.emit(kind, device=device, detail=(detail + "; " if detail else "") + msg, duration_s=dur)
        return dur

    def is_open(self, scope: str, device: str | None = None) -> bool:
        return (scope, device) in self.open
