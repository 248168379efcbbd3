"""Bulk fast path: run simulated heaters on a simulated clock (no network) and write what a
collector would have stored (polls at the poll interval plus event pushes, parsed by
``navilink_etl.status``) into the Parquet store, with the ground truth beside it.

Polls are requests at ``start + k * interval_s``; each reply arrives 2-4 s later and is stamped
on arrival. ``loss`` drops that fraction of replies at random; outage windows lose everything.
Idle stretches of the plant run in closed form; long runs write Parquet in a second process.
Deterministic for a seed and start.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..errors import StoreError
from ..protocol import DEVICE_TYPE, PROTOCOL_VERSION, Command, status_topic
from ..status import (
    KNOWN_KEYS,
    PARSER_VERSION,
    message_kind,
    parse_status,
    status_row,
    status_schema,
)
from .device import STATE_FIELDS, SimulatedDevice, ems_rows, wire_columns
from .faults import Fault, FaultPlan
from .ledger import TruthLog

SOURCE = "simulator"
CLIENT_ID = "navilink-etl-sim"
_T = STATE_FIELDS.index("t")


@dataclass(frozen=True, slots=True)
class SimulateResult:
    samples: int  # status rows written (polls that arrived + pushes)
    polls: int  # replies that arrived
    pushes: int
    lost: int  # replies dropped at random or inside an outage (pushes included)
    truth_rows: int  # steps + cycles + draws + devices rows written
    energy_rows: int
    seconds: float
    devices: list[str] = field(default_factory=list)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else math.inf


@dataclass(frozen=True, slots=True)
class WireProfile:
    """What turning a device's captured states into stored rows needs (picklable)."""

    mac: str
    firmware: str
    counts_per_k: float
    reference_c: float
    min_half_c: int
    additional_value: str

    @classmethod
    def of(cls, dev: SimulatedDevice) -> WireProfile:
        return cls(dev.mac, dev.firmware, dev.counts_per_k, dev.reference_c, dev.min_half_c,
                   dev.additional_value)


def device_mac(seed: int, index: int) -> str:
    h = (seed * 0x9E3779B1 + index * 0x85EBCA77 + 0x2545F491) & 0xFFFFFFFF
    return f"0478{h:08x}"


def weekly_outages(seed: int, index: int, start: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """One outage of 2-6 h at a random time in every (started) week."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, index, 4099])
    out = []
    for w in range(math.ceil(days / 7)):
        span = min(7.0, days - 7.0 * w) * 86400.0
        dur = float(rng.uniform(2.0, 6.0)) * 3600.0
        off = float(rng.uniform(0.0, max(0.0, span - dur)))
        a = start + timedelta(days=7 * w, seconds=off)
        out.append((a, a + timedelta(seconds=dur)))
    return out


class _ChunkWriter:
    """Captured state rows -> status rows exactly as ``status.parse_status`` + ``status_row`` give
    them, stored with ``Store.write_status_frame``.

    Raw values pass through the parser unchanged, so the frame is built from the wire columns and
    ``content_hash`` from the same sorted compact JSON ``status.content_hash`` hashes (built by
    polars). With ``parse_all`` every distinct payload is also serialised and parsed by the real
    parser; otherwise a seeded sample is (each distinct command plus ``verify_fraction`` of the
    distinct payloads), and any difference from the fast path raises.
    """

    def __init__(self, store: Any, dev: WireProfile, *, parse_all: bool, verify_fraction: float,
                 seed: int) -> None:
        self.store = store
        self.dev = dev
        self.parse_all = parse_all
        self.verify_fraction = verify_fraction
        self.rng = np.random.default_rng([seed & 0xFFFFFFFF, 2718])
        self.push_counter = 0
        self.parsed = 0
        self.topic = status_topic(dev.mac)

    @staticmethod
    def _content_hashes(keys: list[str], umat: np.ndarray) -> list[str]:
        """``status.content_hash`` of each row: the same compact sorted-key JSON, built by polars."""
        import polars as pl

        frame = pl.DataFrame({k: umat[:, i] for i, k in enumerate(keys)})
        parts: list[Any] = []
        for i, k in enumerate(sorted(keys)):
            parts += [pl.lit(("{" if i == 0 else ",") + f'"{k}":'), pl.col(k).cast(pl.String)]
        parts.append(pl.lit("}"))
        texts = frame.select(pl.concat_str(parts).alias("j")).get_column("j").to_list()
        return [blake2b(x.encode(), digest_size=8).hexdigest() for x in texts]

    def write(self, rows: np.ndarray, received: np.ndarray, request_t: np.ndarray) -> int:
        """``rows``: captured states in send order; ``received``: arrival times (epoch s);
        ``request_t``: the poll's request time (NaN for pushes)."""
        import polars as pl

        dev = self.dev
        n = rows.shape[0]
        if n == 0:
            return 0
        cols = wire_columns(rows, firmware=dev.firmware, counts_per_k=dev.counts_per_k,
                            reference_c=dev.reference_c, min_half_c=dev.min_half_c)
        keys = list(cols)
        mat = np.stack([cols[k] for k in keys], axis=1)
        view = np.ascontiguousarray(mat).view(np.dtype((np.void, mat.dtype.itemsize * mat.shape[1])))
        _, first, inverse = np.unique(view.ravel(), return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        hashes = self._content_hashes(keys, mat[first])
        # the real parser on every distinct payload, or on a sample of them
        if self.parse_all:
            check = np.arange(len(first))
        else:
            _, by_cmd = np.unique(mat[first, 0], return_index=True)
            pick = self.rng.random(len(first)) < self.verify_fraction
            check = np.union1d(by_cmd, np.flatnonzero(pick))
        getter = itemgetter(*keys)
        for j in check.tolist():
            i = first[j]
            h = self._parse_one(keys, getter, mat[i], float(received[i]))
            if h != hashes[j]:
                raise AssertionError(f"content_hash mismatch: parser {h}, fast path {hashes[j]}")
        self.parsed += len(check)
        cmd = mat[:, 0]
        kind_of = {int(c): message_kind(int(c)) for c in np.unique(cmd)}
        # session ids: a reply echoes the request's ms-epoch sessionID; pushes count "0".."9"
        is_reply = ~np.isnan(request_t)
        req_ms = np.rint(np.nan_to_num(request_t) * 1000).astype(np.int64)
        push_idx = np.cumsum(~is_reply) - 1 + self.push_counter
        self.push_counter += int((~is_reply).sum())
        session = np.where(is_reply, req_ms, push_idx % 10)
        data: dict[str, Any] = {k: cols.get(k) for k in KNOWN_KEYS}
        frame = pl.DataFrame({k: v for k, v in data.items() if v is not None})
        frame = frame.with_columns(
            pl.Series("received_at", np.rint(received * 1e6).astype(np.int64)).cast(pl.Datetime("us", "UTC")),
            pl.lit(dev.mac, dtype=pl.String).alias("device"),
            pl.lit(SOURCE, dtype=pl.String).alias("source"),
            pl.col("command").replace_strict(kind_of, return_dtype=pl.String).alias("kind"),
            pl.Series("session_id", session).cast(pl.String),
            pl.lit(CLIENT_ID, dtype=pl.String).alias("client_id"),
            pl.lit(PARSER_VERSION, dtype=pl.Int32).alias("parser_version"),
            pl.Series("content_hash", hashes, dtype=pl.String).gather(inverse),
            pl.lit(None, dtype=pl.String).alias("extra_json"),
            *[pl.lit(None, dtype=pl.Int64).alias(k) for k, v in data.items() if v is None],
        )
        return int(self.store.write_status_frame(frame.select(list(status_schema()))))

    def _parse_one(self, keys: list[str], getter: Callable[[Any], Any], values: np.ndarray,
                   t: float) -> str:
        """Serialise one payload as the device would, parse it, check that it round-trips
        (``getter``: ``operator.itemgetter(*keys)``)."""
        dev = self.dev
        vals = values.tolist()
        status = dict(zip(keys, vals, strict=True))
        msg = {
            "protocolVersion": PROTOCOL_VERSION, "clientID": CLIENT_ID, "sessionID": "0",
            "requestTopic": self.topic,
            "response": {"deviceType": DEVICE_TYPE, "macAddress": dev.mac,
                         "additionalValue": dev.additional_value, "status": status},
        }
        at = datetime.fromtimestamp(t, UTC)
        row = status_row(parse_status(orjson.dumps(msg), received_at=at), received_at=at, source=SOURCE)
        if getter(row) != tuple(vals):  # (a status has dozens of keys: getter gives a tuple)
            for k, v in status.items():
                if row[k] != v:
                    raise AssertionError(f"status.{k} does not round-trip: {v} -> {row[k]}")
        return str(row["content_hash"])


def _latency(k: np.ndarray, dseed: int) -> np.ndarray:
    """Reply latency of poll number ``k``: 2-4 s, deterministic (inlined in the poll loop)."""
    return 2.0 + 2.0 * ((k.astype(np.int64) * 0x9E3779B1 + dseed) % 1000) / 1000.0


class _Sink:
    """The writing side: the Store, one row writer per device, truth and EMS files. It runs in
    the simulating process or in a writer process (so physics and Parquet overlap on 2 cores)."""

    def __init__(self, data_dir: Path) -> None:
        from ..collect.store import Store

        self.data_dir = Path(data_dir)
        self.store = Store(self.data_dir)
        self.writers: dict[str, _ChunkWriter] = {}

    def status(self, profile: WireProfile, opts: dict[str, Any], arr: np.ndarray,
               received: np.ndarray, request_t: np.ndarray) -> int:
        w = self.writers.get(profile.mac)
        if w is None:
            w = self.writers[profile.mac] = _ChunkWriter(self.store, profile, **opts)
        return w.write(arr, received, request_t)

    def truth(self, payload: tuple[str, dict[str, Any], list[Any], list[Any], dict[str, Any] | None]) -> int:
        device, steps, cycles, draws, device_row = payload
        log = TruthLog(device)
        log.steps_columns, log.cycles, log.draws, log.device_row = steps, cycles, draws, device_row
        return log.write(self.data_dir)

    def energy(self, mac: str, rows: list[tuple[Any, ...]], fetched_at: datetime) -> int:
        import polars as pl

        if not rows:
            return 0
        df = pl.DataFrame({
            "device": [mac] * len(rows), "day": [r[0] for r in rows],
            "hp_wh": [r[1] for r in rows], "he_wh": [r[2] for r in rows],
            "hp_h": [r[3] for r in rows], "he_h": [r[4] for r in rows],
            "fetched_at": [fetched_at] * len(rows), "source": [SOURCE] * len(rows),
        }, schema={"device": pl.String, "day": pl.Date, "hp_wh": pl.Int64, "he_wh": pl.Int64,
                   "hp_h": pl.Int64, "he_h": pl.Int64, "fetched_at": pl.Datetime("us", "UTC"),
                   "source": pl.String})
        return int(self.store.write_energy_frame(df))

    def close(self) -> None:
        self.store.close()


def _read_exact(stream: Any, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _send(stream: Any, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=5)
    stream.write(len(data).to_bytes(8, "little"))
    stream.write(data)
    stream.flush()


def _receive(stream: Any) -> Any:
    n = int.from_bytes(_read_exact(stream, 8), "little")
    # a private pipe between this process and the writer it started: nothing else can write to it
    return pickle.loads(_read_exact(stream, n))  # noqa: S301


def writer_main() -> None:
    """The writer process: requests (method, args) on stdin, ("ok", value) or ("err", text) out."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sink = _Sink(Path(_receive(inp)))
    while True:
        try:
            kind, args = _receive(inp)
        except EOFError:
            sink.close()
            return
        try:
            _send(out, ("ok", getattr(sink, kind)(*args)))
        except Exception:
            _send(out, ("err", traceback.format_exc()))
        if kind == "close":
            return


class _Writer:
    """Calls the sink inline, or in a writer process (started with ``python -c``, so scripts need
    no ``__main__`` guard) with at most two requests in flight."""

    def __init__(self, data_dir: Path, in_process: bool) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending: list[str] = []
        self.totals: dict[str, int] = {"status": 0, "truth": 0, "energy": 0}
        self._sink: _Sink | None = None
        if in_process:
            self._sink = _Sink(data_dir)
            return
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from navilink_etl.sim.simulate import writer_main; writer_main()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        _send(self._proc.stdin, str(data_dir))

    def call(self, kind: str, *args: Any) -> None:
        if self._sink is not None:
            self.totals[kind] += int(getattr(self._sink, kind)(*args))
            return
        assert self._proc is not None
        _send(self._proc.stdin, (kind, args))
        self._pending.append(kind)
        while len(self._pending) > 2:
            self._collect_one()

    def _collect_one(self) -> Any:
        assert self._proc is not None
        kind = self._pending.pop(0)
        try:
            status, value = _receive(self._proc.stdout)
        except EOFError:
            raise StoreError(f"the simulator's Parquet writer process died (exit {self._proc.poll()})") from None
        if status == "err":
            raise StoreError(f"the simulator's Parquet writer failed:\n{value}")
        if kind in self.totals:
            self.totals[kind] += int(value)
        return value

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            return
        proc = self._proc
        assert proc is not None
        try:
            while self._pending:
                self._collect_one()
            _send(proc.stdin, ("close", ()))
            self._pending.append("close")
            self._collect_one()
        finally:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def simulate(
    data_dir: Path,
    *,
    devices: int = 1,
    days: float = 7,
    interval_s: float = 30.0,
    seed: int = 0,
    loss: float = 0.0,
    outages: list[tuple[datetime, datetime]] | None = None,
    outage_per_week: bool = False,
    start: datetime | None = None,
    volume_gal: int = 65,
    location: str = "basement",
    progress: Callable[[int, int], None] | None = None,
    firmware: str = "2025-09",
    draws: str = "household",
    chunk_days: int = 7,
    parse_all: bool | None = None,
    verify_fraction: float = 0.01,
    writer_process: bool | None = None,
    faults: list[Fault] | None = None,
    **device_options: Any,
) -> SimulateResult:
    """Simulate ``devices`` heaters for ``days`` and store polls + pushes, EMS history and truth.

    ``start`` defaults to UTC midnight ``days`` before today (so the data ends today).
    ``progress(done, total)`` is called after each chunk with simulated device-days.
    ``writer_process`` (default: for runs of 60 device-days or more) writes Parquet in a second
    process while the plant runs (on 2 cores the wall time is then about the plant's alone).
    ``parse_all`` (default: for shorter runs) sends every distinct payload through the real
    parser; otherwise ``verify_fraction`` of them is (see ``_ChunkWriter``).
    ``device_options`` go to every ``SimulatedDevice``, among them the settings ``setpoint_f``
    (degF), ``mode`` (heat_pump, energy_saver, high_demand, electric) and ``shift``
    ("HH:MM-HH:MM", sim/schedule.py); the same ``seed`` keeps the weather and the draws.
    ``faults`` (``sim/faults.py``) are injected into every device and recorded in ``truth/faults``.
    """
    t_wall = time.perf_counter()
    if not 0.0 <= loss < 1.0:
        raise ValueError("loss must be in [0, 1)")
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    if start is None:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=days)
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    start = start.astimezone(UTC)
    data_dir = Path(data_dir)
    if writer_process is None:
        writer_process = devices * days >= 60
    if parse_all is None:
        parse_all = devices * days < 60
    t0 = start.timestamp()
    t_stop = t0 + days * 86400.0
    end = datetime.fromtimestamp(t_stop, UTC)
    total_days = math.ceil(days) * devices
    counts = {"polls": 0, "pushes": 0, "lost": 0}
    macs: list[str] = []
    out = _Writer(data_dir, in_process=not writer_process)
    try:
        for di in range(devices):
            mac = device_mac(seed, di)
            macs.append(mac)
            dseed = (seed * 1_000_003 + di) & 0x7FFFFFFF
            truth = TruthLog(mac)
            dev = SimulatedDevice(mac, seed=dseed, start=start, volume_gal=volume_gal,
                                  location=location, firmware=firmware, truth=truth, draws=draws,
                                  **device_options)
            truth.device_row = dev.device_row(interval_s)
            plan = FaultPlan(faults, dev.heater.cop_scale)
            windows = list(outages or []) + plan.outages()
            if outage_per_week:
                windows += weekly_outages(seed, di, start, math.ceil(days))
            profile = WireProfile.of(dev)
            opts = {"parse_all": parse_all, "verify_fraction": verify_fraction, "seed": dseed}
            rng = np.random.default_rng([seed & 0xFFFFFFFF, di, 31337])
            for chunk_end, arr, rq, lat in _run_device(dev, t0, t_stop, interval_s, chunk_days, dseed,
                                                       plan):
                arr = plan.on_wire(arr)
                received, keep = _arrivals(arr, rq, lat, loss, rng, windows)
                is_poll = ~np.isnan(rq)
                counts["lost"] += int((~keep).sum())
                counts["polls"] += int((is_poll & keep).sum())
                counts["pushes"] += int((~is_poll & keep).sum())
                out.call("status", profile, opts, arr[keep], received[keep], rq[keep])
                out.call("truth", _take_truth(truth))
                if progress is not None:
                    done = di * math.ceil(days) + math.ceil((chunk_end - t0) / 86400.0 - 1e-9)
                    progress(min(total_days, done), total_days)
            dev.heater.finish()  # the open cycle and draw, cut at the end: the truth is complete
            out.call("truth", _take_truth(truth))
            plan.write_truth(data_dir, mac)
            tz = dev.heater.tz
            last = (end - timedelta(microseconds=1)).astimezone(tz).date()
            out.call("energy", mac, ems_rows(dev.heater.ems, start.astimezone(tz).date(), last), end)
    finally:
        out.close()
    return SimulateResult(samples=out.totals["status"], polls=counts["polls"],
                          pushes=counts["pushes"], lost=counts["lost"],
                          truth_rows=out.totals["truth"], energy_rows=out.totals["energy"],
                          seconds=time.perf_counter() - t_wall, devices=macs)


def _take_truth(truth: TruthLog) -> tuple[str, dict[str, Any], list[Any], list[Any], dict[str, Any] | None]:
    payload = (truth.device, truth.take_columns(), truth.cycles, truth.draws, truth.device_row)
    truth.cycles, truth.draws, truth.device_row = [], [], None
    return payload


def _run_device(dev: SimulatedDevice, t0: float, t_stop: float, interval_s: float, chunk_days: float,
                dseed: int, plan: FaultPlan | None = None,
                ) -> Iterator[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """Run one device, yielding per chunk: (chunk end, captured states in send order, the poll
    request time per row (NaN for pushes), the reply latency per poll). Chunks also end where
    ``plan``'s faults change the device, which the plan applies at each chunk's start."""
    h = dev.heater
    rows: list[tuple[float, ...]] = []
    req_t: list[float] = []
    lats: list[float] = []
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    h.on_event = lambda t, code: rows.append(dev.state_row(code))

    def flush() -> None:
        if rows:
            req_t.extend([math.nan] * (len(rows) - len(req_t)))
            blocks.append((np.asarray(rows, dtype=np.float64), np.asarray(req_t), np.asarray(lats)))
            rows.clear()
            req_t.clear()
            lats.clear()

    # idle stretches run in closed form when polls fall on the plant's step grid
    step = h.step_s
    fast = (interval_s / step).is_integer() and (t0 / step).is_integer()
    per_poll = round(interval_s / step) if fast else 0
    status = int(Command.STATUS)
    k = 1
    chunk_end = t0
    breaks = plan.breaks(t0, t_stop) if plan is not None else []
    try:
        while chunk_end < t_stop - 1e-9:
            if plan is not None:
                plan.apply(dev, chunk_end)
            nxt = next((b for b in breaks if b > chunk_end + 1e-9), math.inf)
            chunk_end = min(t_stop, chunk_end + chunk_days * 86400.0, nxt)
            while True:
                tp = t0 + k * interval_s
                if tp > chunk_end + 1e-9:
                    break
                if fast and h.idle_limit(chunk_end) >= h.t + 2 * step:
                    before = h.t
                    proto = dev.idle_proto()
                    flush()
                    times, up, lo, mean, cond, amb = h.fast_idle(chunk_end, decide=False)
                    idx = np.rint((times - t0) / step).astype(np.int64)
                    is_p = idx % per_poll == 0
                    if is_p.any():
                        block = dev.idle_rows(proto, status, times[is_p], up[is_p], lo[is_p],
                                              mean[is_p], cond[is_p], amb[is_p])
                        blocks.append((block, times[is_p], _latency(idx[is_p] // per_poll, dseed)))
                    h.decide()  # the decisions due where the stretch ended (may push)
                    if h.t > before:
                        k = max(k, math.ceil((h.t - t0) / interval_s - 1e-9))
                        continue
                h.advance_to(tp)
                req_t.extend([math.nan] * (len(rows) - len(req_t)))
                rows.append(dev.state_row(status))
                req_t.append(tp)
                lats.append(2.0 + 2.0 * ((k * 0x9E3779B1 + dseed) % 1000) / 1000.0)
                k += 1
            h.advance_to(chunk_end)
            flush()
            if blocks:
                yield (chunk_end, np.concatenate([b[0] for b in blocks]),
                       np.concatenate([b[1] for b in blocks]), np.concatenate([b[2] for b in blocks]))
                blocks.clear()
    finally:
        h.on_event = None


def _arrivals(arr: np.ndarray, rq: np.ndarray, lat: np.ndarray, loss: float, rng: np.random.Generator,
              windows: list[tuple[datetime, datetime]]) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times and which messages arrive (random loss of replies, outage windows)."""
    is_poll = ~np.isnan(rq)
    # a reply arrives 2-4 s after its request, a push at once; a reply never overtakes a push the
    # device sent after it (arrival order = send order)
    received = arr[:, _T].copy()
    received[is_poll] += lat
    eps = 1e-3 * np.arange(len(received))
    received = np.minimum.accumulate((received - eps)[::-1])[::-1] + eps
    keep = np.ones(len(arr), dtype=bool)
    if loss > 0.0:
        keep &= ~(is_poll & (rng.random(len(arr)) < loss))
    for a, b in windows:
        keep &= ~((received >= a.timestamp()) & (received < b.timestamp()))
    return received, keep
