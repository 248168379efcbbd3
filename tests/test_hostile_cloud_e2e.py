"""The real collector against the hostile fake-cloud profile: bad entries and messages mixed with good
ones. Nothing escapes data/, bad device-list entries and plans are left out, the collector keeps going.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import SecretStr

from navilink_etl.collect.run import run_collection
from navilink_etl.collect.store import scan_dataset
from navilink_etl.config import NaviLinkConfig
from navilink_etl.sim.cloud import FakeCloud
from navilink_etl.sim.hostile import (
    COUNTER_MAX,
    DEDUP,
    DEFAULT_MAC,
    QUARANTINE,
    REJECT,
    SKIP,
    WRONG_TYPES_MAC,
    HostileProfile,
    Ledger,
    Toggles,
)
from navilink_etl.status import content_hash


@dataclass
class Run:
    base: Path  # scanned for escapes: the run works four folders below it
    root: Path
    data: Path
    ledger: Ledger
    good_macs: list[str]
    stats: Any
    alive_after_hostile: bool
    error: BaseException | None = None
    log_text: str = ""


class _Capture(logging.Handler):
    """Every record of the run as a person would read it (message and traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def _collect(base: Path, root: Path, toggles: Toggles) -> Run:
    data = root / "data"
    async with FakeCloud(n_devices=2, speed=600.0, seed=3, hostile=HostileProfile(toggles)) as fc:
        over = fc.client_overrides()
        over["password"] = SecretStr(str(over["password"]))
        cfg = NaviLinkConfig(data_dir=data, timezone="UTC").model_copy(update=over)
        task = asyncio.create_task(run_collection(cfg, interval=120, duration_min=0.6, clock=fc.clock,
                                                  mode="embedded", status_line=False))
        assert fc.hostile is not None
        for _ in range(300):  # every MQTT item sent and the energy faults answered
            if fc.hostile.done or task.done():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # the collector must still be working after all of it
        alive = not task.done()
        stats = await task
        return Run(base, root, data, fc.hostile.ledger, [d.mac for d in fc.devices], stats, alive)


def _run_in(base: Path, toggles: Toggles) -> Run:
    root = base / "a" / "b" / "c" / "work"  # deep enough that "../../../.." stays inside base
    root.mkdir(parents=True)
    cwd = Path.cwd()
    os.chdir(root)  # anything written relative to the working folder lands in the scanned tree
    capture = _Capture()
    logging.getLogger().addHandler(capture)
    try:
        run = asyncio.run(_collect(base, root, toggles))
    except Exception as exc:  # reported by the tests that need the run
        run = Run(base, root, root / "data", Ledger(), [], None, False, exc)
    finally:
        logging.getLogger().removeHandler(capture)
        os.chdir(cwd)
    run.log_text = "\n".join(capture.lines)
    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The whole hostile profile, mixed with the good devices' ordinary traffic."""
    r = _run_in(tmp_path_factory.mktemp("hostile"), Toggles())
    assert r.error is None, repr(r.error)
    return r


def _status(data: Path) -> pl.DataFrame:
    return scan_dataset(data, "status").collect()


def test_every_hostile_kind_was_sent(run: Run) -> None:
    kinds = run.ledger.kinds()
    assert {"traversal_mac_list_entry", "default_mac_list_entry", "case_duplicate_list_entry",
            "wrong_types_list_entry", "broken_tou_plan", "absurd_year", "mismatched_body_mac",
            "nan_status", "inf_status", "big_payload", "redelivered_push"} <= kinds  # fmt: skip
    assert {i.expect for i in run.ledger.items} == {SKIP, REJECT, QUARANTINE, DEDUP}
    assert all(run.ledger.good.get(m) for m in run.good_macs)


def test_the_full_profile_leaves_the_collector_running_and_data_contained(run: Run) -> None:
    assert run.error is None, repr(run.error)
    assert {"traversal_body_mac", "default_body_mac", "counter_max_status", "counter_max_energy"} \
        <= run.ledger.kinds()
    outside = [p for p in run.base.rglob("*") if p.is_file() and run.data not in p.parents]
    assert outside == [] and not list(run.base.rglob("escaped_dir*"))
    assert run.alive_after_hostile and run.stats.fatal is None
    assert run.log_text and "Traceback" not in run.log_text


def test_nothing_is_written_outside_data(run: Run) -> None:
    outside = [p for p in run.base.rglob("*") if p.is_file() and run.data not in p.parents]
    assert outside == []
    assert not list(run.base.rglob("escaped_dir*"))
    assert run.alive_after_hostile and run.stats.fatal is None


def test_bad_device_list_entries_are_left_out_and_good_devices_polled(run: Run) -> None:
    assert sorted(run.stats.devices) == sorted(run.good_macs)
    assert all(run.stats.polls_ok[m] > 0 for m in run.good_macs)
    energy = scan_dataset(run.data, "energy").collect()
    assert set(energy.get_column("device")) <= set(run.good_macs)
    assert WRONG_TYPES_MAC not in set(_status(run.data).get_column("device"))


def test_a_broken_tou_plan_is_not_saved(run: Run) -> None:
    first, second = run.good_macs
    saved = {p.stem for p in (run.data / "tou").glob("*.json")}
    assert first not in saved and second in saved and DEFAULT_MAC not in saved


def test_absurd_energy_years_are_rejected_and_retried(run: Run) -> None:
    energy = scan_dataset(run.data, "energy").collect()
    years = {d.year for d in energy.get_column("day")}
    assert years and all(2000 <= y <= 2100 for y in years)
    first = run.good_macs[0]
    assert energy.filter(pl.col("device") == first).height > 0  # the retry got good history


def test_energy_counters_of_all_ones_are_rejected(run: Run) -> None:
    assert run.error is None, repr(run.error)
    energy = scan_dataset(run.data, "energy").collect()
    assert energy.filter(pl.col("hp_wh") >= COUNTER_MAX).height == 0


def _missing_quarantine(run: Run, kinds: set[str] | None = None) -> list[str]:
    rows = scan_dataset(run.data, "quarantine").collect().select("topic", "reason", "raw").rows()
    missing = []
    for item in run.ledger.by_expect(QUARANTINE):
        if kinds is not None and item.kind not in kinds:
            continue
        if not any(topic == item.topic and reason and (item.needle is None or item.needle in raw)
                   for topic, reason, raw in rows):
            missing.append(item.kind)
    return missing


def test_non_finite_numbers_are_quarantined_with_a_reason(run: Run) -> None:
    assert _missing_quarantine(run, {"nan_status", "inf_status"}) == []


def test_every_bad_message_is_quarantined_with_a_reason(run: Run) -> None:
    assert run.error is None, repr(run.error)
    assert _missing_quarantine(run) == []
    devices = set(_status(run.data).get_column("device"))
    assert devices <= set(run.good_macs)


def test_every_good_sample_is_stored_once(run: Run) -> None:
    import orjson

    status = _status(run.data)
    counts = dict(status.group_by(["device", "content_hash"]).len().select(
        pl.concat_str(["device", "content_hash"], separator="|"), "len").rows())
    last_sent = max(i.sent_at for i in run.ledger.items)
    assert any(i.kind == "redelivered_push" for i in run.ledger.items)
    for mac in run.good_macs:
        # distinct messages per status content: a device may send the same status twice (a poll
        # reply, then a push), each its own sample; the redelivered bytes are not among them
        sent: dict[str, set[bytes]] = {}
        for at, payload in run.ledger.good[mac]:
            if at < last_sent:  # sent well before the end: must have been stored
                sent.setdefault(content_hash(orjson.loads(payload)["response"]["status"]), set()).add(payload)
        assert sent
        for h, messages in sent.items():
            assert counts.get(f"{mac}|{h}") == len(messages), (mac, h)
