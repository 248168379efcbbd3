"""What a collector run did: samples per device, failures by kind, latency, coverage, files written."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

WINDOW = 200_000  # latency/lateness samples kept (the most recent ones) for percentiles


class Window:
    """The most recent ``size`` floats in one preallocated array: memory is the same on day one
    and after a year (a deque of float objects grew by 32 bytes a sample until it was full)."""

    def __init__(self, size: int = WINDOW) -> None:
        self.size = size
        self._a = array("d", bytes(8 * size))
        self._n = 0

    def append(self, value: float) -> None:
        self._a[self._n % self.size] = value
        self._n += 1

    def __len__(self) -> int:
        return min(self._n, self.size)

    def __iter__(self) -> Iterator[float]:  # oldest-first order does not matter for percentiles
        return iter(self._a[: len(self)])


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0-100) of ``values``; None when empty."""
    s = sorted(values)
    if not s:
        return None
    k = max(0, min(len(s) - 1, round(q / 100.0 * len(s) + 0.5) - 1))
    return s[k]


@dataclass
class CollectorStats:
    """Counters of one run. Times of samples and events are simulated time on the embedded default."""

    mode: str = "cloud"  # "cloud" or "embedded"
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    uptime_s: float = 0.0  # real seconds
    interval_s: float = 0.0  # poll interval in (simulated) seconds
    devices: list[str] = field(default_factory=list)
    samples: Counter[str] = field(default_factory=Counter)  # status rows stored, per device
    replies: Counter[str] = field(default_factory=Counter)  # of which answers to our polls
    polls_ok: Counter[str] = field(default_factory=Counter)
    polls_failed: Counter[str] = field(default_factory=Counter)
    polls_scheduled: Counter[str] = field(default_factory=Counter)
    polls_on_time: int = 0
    polls_skipped_backoff: int = 0
    polls_missed: int = 0  # APScheduler could not run the job in time (loop overloaded)
    failures: Counter[str] = field(default_factory=Counter)  # by kind
    latencies_s: Window = field(default_factory=Window)  # real s, request -> reply (recent)
    lateness_s: Window = field(default_factory=Window)  # real s, schedule -> start (recent)
    quarantined: int = 0
    duplicates: int = 0
    dropped: int = 0  # samples not kept because the buffer was full (store failing for long)
    dropped_events: int = 0
    dropped_quarantine: int = 0
    lost: int = 0  # buffered samples the store still refused at shutdown
    refreshes: int = 0  # warehouse refreshes finished
    energy_days: int = 0
    events: int = 0
    files_written: int = 0
    bytes_written: int = 0
    fatal: str | None = None  # set when the run stopped on an error that must not be retried

    @property
    def polls_total(self) -> int:
        return sum(self.polls_ok.values()) + sum(self.polls_failed.values())

    @property
    def on_time_share(self) -> float | None:
        n = sum(self.polls_scheduled.values())
        return None if n == 0 else self.polls_on_time / n

    def coverage(self, mac: str) -> float | None:
        """Share of scheduled polls that brought a reply."""
        n = self.polls_scheduled.get(mac, 0)
        return None if n == 0 else min(1.0, self.polls_ok.get(mac, 0) / n)

    def as_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode, "uptime_s": round(self.uptime_s, 1), "devices": len(self.devices),
            "samples": sum(self.samples.values()), "polls_ok": sum(self.polls_ok.values()),
            "polls_failed": sum(self.polls_failed.values()),
            "polls_scheduled": sum(self.polls_scheduled.values()),
            "on_time_share": self.on_time_share, "polls_missed": self.polls_missed,
            "latency_p50_s": percentile(self.latencies_s, 50),
            "latency_p99_s": percentile(self.latencies_s, 99),
            "failures": dict(self.failures), "quarantined": self.quarantined,
            "duplicates": self.duplicates, "dropped": self.dropped, "lost": self.lost,
            "refreshes": self.refreshes, "energy_days": self.energy_days, "events": self.events,
            "files_written": self.files_written, "bytes_written": self.bytes_written,
            "fatal": self.fatal,
        }  # fmt: skip

    def summary(self, max_devices: int = 20) -> str:
        """A few lines a person can read at the end of a run."""
        p50, p99 = percentile(self.latencies_s, 50), percentile(self.latencies_s, 99)
        ot = self.on_time_share
        lines = [
            f"collector ({self.mode}) ran {self.uptime_s / 60:.1f} min, poll interval {self.interval_s:g} s"
            + (" (simulated)" if self.mode == "embedded" else ""),
            f"  polls: {self.polls_total} made, {sum(self.polls_ok.values())} answered, "
            f"{sum(self.polls_failed.values())} failed, {self.polls_skipped_backoff} skipped in backoff, "
            f"{self.polls_missed} missed by the scheduler"
            + (f"; {ot:.1%} on time" if ot is not None else ""),
            "  latency: " + ("no replies" if p50 is None or p99 is None
                             else f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"),
            f"  stored: {sum(self.samples.values())} status samples, {self.energy_days} energy days, "
            f"{self.events} events, {self.quarantined} quarantined, {self.duplicates} duplicates dropped; "
            f"{self.files_written} Parquet files ({self.bytes_written / 1e6:.2f} MB)",
        ]
        if self.dropped or self.lost or self.dropped_events or self.dropped_quarantine:
            lines.append(f"  NOT STORED (store failing): {self.dropped} samples dropped, {self.lost} lost at "
                         f"shutdown, {self.dropped_events} events, {self.dropped_quarantine} bad messages")
        if self.failures:
            lines.append("  failures: " + ", ".join(f"{k} {v}" for k, v in self.failures.most_common()))
        for mac in sorted(self.devices)[:max_devices]:
            cov = self.coverage(mac)
            lines.append(f"  {mac}: {self.samples.get(mac, 0)} samples, "
                         f"{self.polls_ok.get(mac, 0)}/{self.polls_scheduled.get(mac, 0)} polls answered"
                         + (f" (coverage {cov:.0%})" if cov is not None else ""))
        if len(self.devices) > max_devices:
            lines.append(f"  ... and {len(self.devices) - max_devices} more devices")
        if self.fatal:
            lines.append(f"  STOPPED: {self.fatal}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
