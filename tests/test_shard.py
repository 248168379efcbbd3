"""Sharded collectors: stable MAC -> shard assignment, clear errors, and collectors sharing one store
on one fake cloud while the shard count changes (no status message lost or stored twice)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from pydantic import SecretStr

from navilink_etl.collect.fleet import addressee
from navilink_etl.collect.run import run_collection
from navilink_etl.collect.shard import FleetId, Shard, fleet_client_id, is_fleet_client_id, owner
from navilink_etl.collect.store import scan_dataset
from navilink_etl.config import NaviLinkConfig, load_config
from navilink_etl.errors import ConfigurationError
from navilink_etl.sim.cloud import FakeCloud

ROOT = Path(__file__).resolve().parents[1]


def _macs(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return sorted({f"{rng.getrandbits(48):012x}" for _ in range(n)})


@pytest.mark.parametrize("spec", ["3/2", "0/0", "x", "1/0", "0/3", "2", "1/2/3", "-1/2"])
def test_bad_shard_is_a_clear_error(spec: str) -> None:
    with pytest.raises(ConfigurationError) as e:
        Shard.parse(spec)
    assert "--shard" in str(e.value) and "fix:" in str(e.value) and "K/N" in str(e.value)
    with pytest.raises(ConfigurationError) as e2:
        load_config(shard=spec)
    assert "NAVILINK_SHARD" in str(e2.value) and "fix:" in str(e2.value)


def test_shard_spec_forms() -> None:
    assert Shard.parse(None) == Shard.parse("") == Shard(1, 1)
    assert Shard.parse(" 2 / 4 ") == Shard(2, 4) and Shard(2, 4).label == "s2of4"
    assert load_config(shard="2/4").shard == "2/4"


def test_assignment_is_stable_balanced_and_moves_only_what_it_must() -> None:
    macs = _macs(4000)
    by3 = {m: owner(m, 3) for m in macs}
    by4 = {m: owner(m, 4) for m in macs}
    moved = [m for m in macs if by3[m] != by4[m]]
    assert all(by4[m] == 4 for m in moved)  # only to the new shard, never between old ones
    assert 0.20 < len(moved) / len(macs) < 0.30  # ~1/4 of the devices
    counts = Counter(by4.values())
    assert min(counts.values()) > 0.85 * len(macs) / 4
    # the list it is computed from does not matter: a device's shard is its own
    half = macs[::2]
    assert all(owner(m, 4) == by4[m] for m in half)
    assert [Shard(k, 4).owns(macs[0]) for k in range(1, 5)].count(True) == 1
    assert all(Shard(1, 1).owns(m) for m in macs[:50])
    # another process with another hash seed (Python's hash() would differ): the same shards
    code = ("import json,sys; from navilink_etl.collect.shard import owner; "
            "print(json.dumps([owner(m, 4) for m in json.loads(sys.argv[1])]))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(macs[:200])], capture_output=True,
                         text=True, cwd=ROOT, env=os.environ | {"PYTHONHASHSEED": "12345"}, check=True)
    assert json.loads(out.stdout) == [by4[m] for m in macs[:200]]


def test_fleet_ids_and_addressees() -> None:
    cid = fleet_client_id(Shard(2, 3), started=1_700_000_000)
    fid = FleetId.parse(cid)
    assert fid is not None and fid.shard == Shard(2, 3) and fid.started == 1_700_000_000
    assert is_fleet_client_id(cid + "-c4") and not is_fleet_client_id("navilink-etl-1a2b3c4d")
    assert not is_fleet_client_id("my-phone") and not is_fleet_client_id(cid.replace("s2of3", "s4of3"))
    assert fleet_client_id(Shard(2, 3)) != fleet_client_id(Shard(2, 3))  # unique per process/account
    mac = "04786332abcd"
    assert addressee(f"cmd/52/navilink-{mac}/{cid}/res") == cid
    assert addressee(f"cmd/52/{cid}/res/energy-usage-daily-query/rd") == cid
    assert addressee(f"cmd/52/navilink-{mac}/st") is None


# --- collectors on one fake cloud ---------------------------------------------------------------

SPEED, INTERVAL = 600.0, 300.0  # a poll every 0.5 real s; device list every 6 real s


class Recorder:
    """Every status message a fake device publishes and every request a client sends, with times."""

    def __init__(self, fc: FakeCloud) -> None:
        self.sent: list[tuple[float, str, str, str]] = []  # (t, mac, clientID, sessionID)
        self.requests: list[tuple[float, str, str]] = []  # (t, mac, clientID)
        publish, hook = fc.broker.publish, fc.broker.on_publish

        async def recording_publish(topic: str, payload: bytes) -> None:
            msg = orjson.loads(payload)
            r = msg.get("response") if isinstance(msg, dict) else None
            if isinstance(r, dict) and isinstance(r.get("status"), dict):
                self.sent.append((time.monotonic(), r["macAddress"], msg["clientID"], msg["sessionID"]))
            await publish(topic, payload)

        def recording_hook(topic: str, payload: bytes) -> None:
            try:
                msg = orjson.loads(payload)
            except orjson.JSONDecodeError:
                msg = None
            if isinstance(msg, dict) and isinstance(msg.get("request"), dict):
                self.requests.append((time.monotonic(), msg["request"]["macAddress"], msg["clientID"]))
            if hook is not None:
                hook(topic, payload)

        fc.broker.publish = recording_publish  # type: ignore[method-assign]  # before start: agents bind it
        fc.broker.on_publish = recording_hook


class Run:
    def __init__(self, fc: FakeCloud, data: Path, shard: str) -> None:
        over: dict[str, Any] = fc.client_overrides()
        over["password"] = SecretStr(str(over["password"]))
        cfg = NaviLinkConfig(data_dir=data, timezone="UTC", shard=shard, refresh_minutes=0).model_copy(
            update=over | {"request_timeout": 0.4})
        self.shard, self.stop, self.ready = shard, asyncio.Event(), asyncio.Event()
        self.task = asyncio.create_task(run_collection(
            cfg, interval=INTERVAL, duration_min=None, clock=fc.clock, mode="embedded", status_line=False,
            stop=self.stop, ready=self.ready, flush_every_s=2.0))
        self.stopped_at: float | None = None

    async def started(self) -> Run:
        await asyncio.wait_for(self.ready.wait(), 30)
        return self

    async def finish(self) -> Any:
        self.stopped_at = time.monotonic()
        self.stop.set()
        stats = await asyncio.wait_for(self.task, 40)
        assert stats.fatal is None
        return stats


async def test_shards_split_devices_and_a_reshard_loses_and_doubles_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fc = FakeCloud(n_devices=8, speed=SPEED, seed=10)  # 4+4 devices on 2 shards, 2+3+3 on 3
    rec = Recorder(fc)
    async with fc:
        macs = [d.mac for d in fc.devices]
        a = await Run(fc, data, "1/2").started()
        b = await Run(fc, data, "2/2").started()
        await asyncio.sleep(3.0)
        t_c = time.monotonic()
        c = await Run(fc, data, "3/3").started()  # N 2 -> 3: shard 3's devices leave shards 1 and 2
        await asyncio.sleep(8.0)  # > one device-list refresh (6 s): the old owners hand them over
        a2 = await Run(fc, data, "1/3").started()  # rolling restart: the new one first, then the old
        a_stats = await a.finish()
        b2 = await Run(fc, data, "2/3").started()
        b_stats = await b.finish()
        await asyncio.sleep(2.0)
        t_end = time.monotonic()
        rest = [await r.finish() for r in (c, a2, b2)]
    stats = {"1/2": a_stats, "2/2": b_stats, "3/3": rest[0], "1/3": rest[1], "2/3": rest[2]}
    # every device was collected by the shard that owns it, never by another
    for spec, st in stats.items():
        sh = Shard.parse(spec)
        assert st.devices and all(sh.owns(m) for m in st.devices), spec
    assert sorted({m for st in stats.values() for m in st.devices}) == sorted(macs)
    moved = [m for m in macs if owner(m, 3) == 3]
    assert moved and set(moved) == set(stats["3/3"].devices)
    # one store, one spool per shard, writer-named files, nothing left spooled
    spools = sorted(p.name for p in (data / "spool").iterdir() if p.is_dir())
    assert spools == ["s1of2", "s1of3", "s2of2", "s2of3", "s3of3"]
    names = [p.name for p in (data / "status").glob("**/*.parquet")]
    assert names and all(any(f"-{w}-" in n for w in spools) for n in names)
    # the old owners stopped polling the moved devices at their next device-list refresh
    last_old = max(t for t, m, cid in rec.requests if m in moved and ("-s1of2-" in cid or "-s2of2-" in cid))
    # one device-list refresh (6 s) after the new collector started, plus slack for a loaded machine
    assert last_old - t_c < 6.0 + 4.0, "a moved device was polled by two collectors for too long"
    # exactly once: every status message a device sent (while its collectors ran) is stored, none
    # twice. Pushes reuse sessionIDs 0-9, so messages are compared as multisets of
    # (device, addressee, sessionID): stored never exceeds sent, and covers all sent before the end.
    st = scan_dataset(data, "status").collect()
    stored = Counter(zip(st["device"], st["client_id"], st["session_id"], strict=True))
    sent_all = Counter((m, cid, sid) for t, m, cid, sid in rec.sent)
    sent = Counter((m, cid, sid) for t, m, cid, sid in rec.sent if t < t_end - 0.5)
    doubled = {k: n for k, n in stored.items() if n > sent_all[k]}
    assert not doubled, f"stored more often than sent: {list(doubled.items())[:3]}"
    lost = {k: n - stored[k] for k, n in sent.items() if stored[k] < n}
    assert not lost, f"{sum(lost.values())} of {sum(sent.values())} status messages lost: {list(lost.items())[:3]}"
    assert sum(sent.values()) > 8 * 20  # plenty of traffic: replies and pushes
    assert st.height == sum(sum(s.samples.values()) for s in stats.values())
    # handovers were recorded as such
    ev = scan_dataset(data, "events").filter(pl.col("kind") == "device_removed").collect()
    assert ev.height >= len(moved) and ev["detail"].str.contains("handed over").all()


def test_collect_command_refuses_a_bad_shard() -> None:
    from typer.testing import CliRunner

    from navilink_etl.cli import app

    res = CliRunner().invoke(app, ["collect", "--shard", "3/2"])
    assert res.exit_code == 2
    assert "NAVILINK_SHARD" in res.output and "K/N" in res.output and "3/2" in res.output


def test_writers_share_a_store_without_sharing_locks_names_or_compactions(tmp_path: Path) -> None:
    from navilink_etl.collect.run import drain_idle_spools
    from navilink_etl.collect.store import Store
    from navilink_etl.errors import StoreError
    from navilink_etl.storage import Location

    from .test_store import rows_for

    data = tmp_path / "data"
    a, b = Store(data, writer="s1of2"), Store(data, writer="s2of2")  # both open at once
    with pytest.raises(StoreError, match=r"in use as writer s1of2.*--shard"):
        Store(data, writer="s1of2")
    for i in range(3):  # three flushes each, into the same day partitions of one device
        a.append_status(rows_for("04786332aaaa", 5, start=datetime(2026, 3, 1, 1, i, tzinfo=UTC)))
        a.flush()
        b.append_status(rows_for("04786332aaaa", 5, start=datetime(2026, 3, 1, 2, i, tzinfo=UTC)))
        b.flush()
    pdir = next((data / "status").glob("device=*/date=*"))
    names = sorted(p.name for p in pdir.glob("*.parquet"))
    assert len(names) == 6 and all("-s1of2-" in n or "-s2of2-" in n for n in names)
    assert a.compact(min_files=2) == 1  # merges its own three files only
    after = sorted(p.name for p in pdir.glob("*.parquet"))
    assert sum("-s2of2-" in n for n in after) == 3 and sum("-s1of2-" in n for n in after) == 1
    b.append_status(rows_for("04786332aaaa", 2, start=datetime(2026, 3, 1, 3, 0, tzinfo=UTC)))
    b.close(flush=False)  # as after a crash: two rows left in its spool
    a.close()
    with Store(data) as one:  # the one-writer store leaves the shards' files alone
        assert one.compact(min_files=2) == 0
    assert drain_idle_spools(Location.from_setting(data), data / "spool", mine=None) == 1  # s2of2's idle spool
    total = scan_dataset(data, "status").collect()
    assert total.height == 3 * 5 * 2 + 2 and total.unique(["received_at", "content_hash"]).height == total.height
