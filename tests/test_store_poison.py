"""Store: no value can block it. Bad rows are refused into quarantine before the spool, and rows
planted straight in the spool (SQLite) are quarantined on the next start; paths stay in data/."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from navilink_etl.collect.store import Store, scan_dataset
from navilink_etl.errors import PayloadError, StoreError

from .conftest import load_capture
from .test_store import rows_for, status_keys

MAC = "aabbccddeeff"
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
US0 = int((T0 - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000
DAY0 = (T0.date() - date(1970, 1, 1)).days
ALL_ONES = 2**64 - 1


def quarantined(data: Path) -> pl.DataFrame:
    return scan_dataset(data, "quarantine").collect()


def files_outside(root: Path, data: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and data not in p.parents]


def energy_row(**over: Any) -> dict[str, Any]:
    row = dict(device=MAC, day=date(2026, 11, 19), hp_wh=1200, he_wh=0, hp_h=3, he_h=0,
               fetched_at=T0, source="test")
    return row | over


def test_out_of_range_values_are_quarantined_before_the_spool(tmp_path: Path) -> None:
    good = rows_for(MAC, 3, start=T0)
    bad_power = dict(rows_for(MAC, 4, start=T0)[3], currentInstPower=ALL_ONES)
    bad_mac = dict(good[0], device="aa/../../../../escaped_dir")
    far_future = dict(good[1], received_at=datetime(9999, 12, 31, tzinfo=UTC))
    with Store(tmp_path / "data") as s:
        assert s.append_status([good[0], bad_power, good[1], bad_mac, far_future, good[2]]) == 3
        assert s.append_energy([energy_row(hp_wh=ALL_ONES), energy_row(day=date(2026, 11, 18))]) == 1
        assert s.append_energy([energy_row(day=date(2026, 11, 17), hp_h=25)]) == 0
        assert s.stats.refused == 5
    data = tmp_path / "data"
    assert status_keys(data).height == 3
    assert scan_dataset(data, "energy").collect().get_column("day").to_list() == [date(2026, 11, 18)]
    reasons = quarantined(data).get_column("reason").to_list()
    assert any(f"currentInstPower={ALL_ONES}" in r and "Int64" in r for r in reasons)
    assert any(f"hp_wh={ALL_ONES}" in r and "does not fit" in r for r in reasons)
    assert any("hp_h=25" in r for r in reasons)
    assert any("escaped_dir" in r and "not a MAC" in r for r in reasons)
    assert any("received_at=9999-12-31T00:00:00+00:00 is outside 2000-01-01..2099-12-31" in r
               for r in reasons)
    assert not list(data.glob("status/*/date=9999*"))
    assert files_outside(tmp_path, data) == []


def test_a_bad_device_or_time_in_an_event_or_quarantine_row_never_raises(tmp_path: Path) -> None:
    with Store(tmp_path) as s:
        assert s.append_event("poll_failed", device="../../etc", detail="x", at=T0)
        assert not s.append_event("poll_failed", device=MAC, duration_s=float("nan"), at=T0)
        assert s.quarantine(reason="r", raw=b"\xff\xfe", source="mqtt", device="../x",
                            received_at=datetime(1, 1, 1, tzinfo=UTC))
    ev = scan_dataset(tmp_path, "events").collect()
    assert ev.get_column("device").to_list() == [None]
    assert "'../../etc' is not a MAC" in ev.get_column("detail")[0]
    q = quarantined(tmp_path)
    assert q.height == 2 and set(q.get_column("device").to_list()) == {MAC, None}
    assert any("duration_s=nan" in r for r in q.get_column("reason").to_list())


def _plant(spool: Path, rows: list[tuple[str, bytes]]) -> None:
    db = sqlite3.connect(spool)
    db.executemany("INSERT INTO pending (dataset, payload) VALUES (?, ?)", rows)
    db.commit()
    db.close()


def _status_payload(**over: Any) -> dict[str, Any]:
    p = {"device": MAC, "received_at": US0, "date": DAY0, "content_hash": "0123456789abcdef",
         "source": "planted", "command": 16777219, "currentInstPower": 400}
    return p | over


PLANTED: dict[str, tuple[str, bytes]] = {
    "status_all_ones": ("status", orjson.dumps(_status_payload(currentInstPower=ALL_ONES))),
    "status_beyond_u64": ("status", orjson.dumps(_status_payload()).replace(b'"currentInstPower":400',
                                                                           b'"currentInstPower":1' + b"0" * 25)),
    "status_traversal": ("status", orjson.dumps(_status_payload(device="aa/../../../../escaped_dir"))),
    "status_year_9999": ("status", orjson.dumps(_status_payload(received_at=253402300799000000,
                                                                date=2932896))),
    "status_text_in_int": ("status", orjson.dumps(_status_payload(dhwTemperature="hot"))),
    "energy_all_ones": ("energy", orjson.dumps({"device": MAC, "day": DAY0 - 1, "fetched_at": US0,
                                                "hp_wh": ALL_ONES, "he_wh": 0, "hp_h": 1, "he_h": 0})),
    "energy_day_overflow": ("energy", orjson.dumps({"device": MAC, "day": 10**12, "fetched_at": US0,
                                                    "hp_wh": 1, "he_wh": 0, "hp_h": 1, "he_h": 0})),
    "event_bad_time": ("events", orjson.dumps({"at": -(2**62), "date": 0, "kind": "x"})),
    "quarantine_bad_time": ("quarantine", orjson.dumps({"received_at": "yesterday", "date": 1,
                                                        "reason": "r", "raw": "x"})),
    "not_json": ("status", b"\xff\xfe{not json"),
    "json_list": ("status", b"[1, 2, 3]"),
    "unknown_dataset": ("bogus", orjson.dumps(_status_payload())),
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_a_value_planted_in_the_spool_is_quarantined_on_restart(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    before = rows_for(MAC, 3, start=T0 - timedelta(hours=1))
    after = rows_for("001122334455", 3, start=T0)
    s = Store(data)
    s.append_status(before)
    s.close(flush=False)
    _plant(data / "spool" / "spool.sqlite", [PLANTED[kind]])
    s = Store(data, replay=False)
    s.append_status(after)
    s.append_energy([energy_row()])
    s.close(flush=False)

    with Store(data) as s:  # opening redoes the flush: it must not fail
        assert s.pending() == 0
        s.append_status(rows_for(MAC, 5, start=T0 + timedelta(hours=2))[4:])
        assert s.flush().rows["status"] == 1  # and the store goes on
    keys = status_keys(data)
    assert keys.height == keys.unique().height == 7  # the good rows around it, once each
    q = quarantined(data)
    assert q.height == 1, q.get_column("reason").to_list()
    assert q.get_column("reason")[0] and q.get_column("raw")[0]
    assert scan_dataset(data, "energy").collect().height == 1
    assert not list(data.glob("status/*/date=9999*")) and not list(data.rglob("*escaped_dir*"))
    assert files_outside(tmp_path, data) == []
    with Store(data) as s:  # and again: nothing left behind to trip on
        assert s.pending() == 0


def test_a_batch_that_fails_twice_the_same_way_goes_to_quarantine(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Second line of defence: a failure no check foresaw (here: every events write raises)."""
    real = Store._write_dated_rows

    def broken(self: Store, ds: str, rows: list[dict], name: str) -> Any:
        if ds == "events":
            raise RuntimeError("cannot encode this event")
        return real(self, ds, rows, name)

    monkeypatch.setattr(Store, "_write_dated_rows", broken)
    with Store(tmp_path) as s:
        s.append_status(rows_for(MAC, 4, start=T0))
        s.append_event("poll_failed", device=MAC, detail="timeout", at=T0)
        res = s.flush()
        assert res.rows["status"] == 4 and res.rows["quarantine"] == 1 and s.pending() == 0
    q = quarantined(tmp_path)
    assert "events row refused by the store: could not be written twice" in q.get_column("reason")[0]
    assert "cannot encode this event" in q.get_column("reason")[0]
    assert '"kind":"poll_failed"' in q.get_column("raw")[0]
    assert status_keys(tmp_path).height == 4


def test_paths_come_only_from_checked_names(tmp_path: Path) -> None:
    with Store(tmp_path) as s:
        for device in ("../x", "AABBCCDDEEFF", "default", "/etc/passwd", "aabbccddeef"):
            with pytest.raises(PayloadError, match="not a MAC"):
                s._dir("status", device=device)
        with pytest.raises(PayloadError, match="not a date"):
            s._dir("status", device=MAC, day=date(9999, 1, 1))
        with pytest.raises(StoreError, match="unknown dataset"):
            s._dir("../status")
        with pytest.raises(StoreError, match="outside the data directory"):
            s._under(tmp_path / "status" / ".." / ".." / "x")
        assert s._dir("status", device=MAC, day=date(2026, 1, 2)) == (
            tmp_path / "status" / f"device={MAC}" / "date=2026-01-02")
        with pytest.raises(PayloadError, match="not 12 hex digits"):
            s.compact(device="../../x")


def test_tou_plans_are_saved_only_under_a_mac_and_only_when_valid(tmp_path: Path) -> None:
    plan = load_capture("rest_device_tou_response.json")
    with Store(tmp_path) as s:
        assert s.save_tou_plan("AA:BB:CC:DD:EE:FF", plan) == tmp_path / "tou" / f"{MAC}.json"
        for device in ("default", "aa/../../x", "/tmp/evil", ""):
            with pytest.raises(PayloadError, match="not 12 hex digits"):
                s.save_tou_plan(device, plan)
        broken = orjson.loads(orjson.dumps(plan))
        broken["data"]["data"]["touInfo"]["schedule"][0]["interval"][0]["endHour"] = 99
        with pytest.raises(PayloadError, match="endHour=99"):
            s.save_tou_plan("001122334455", broken)
        with pytest.raises(PayloadError, match="schedule"):
            s.save_tou_plan("001122334455", {"data": {}})
    assert sorted(p.name for p in (tmp_path / "tou").iterdir()) == [f"{MAC}.json"]


def test_text_the_spool_cannot_hold_is_refused_or_replaced(tmp_path: Path) -> None:
    with Store(tmp_path) as s:
        row = dict(rows_for(MAC, 1, start=T0)[0], session_id="s\ud800")
        assert s.append_status([row]) == 0
        assert s.quarantine(reason="r\udcff", raw="raw \ud800", source="mqtt", received_at=T0)
        assert s.append_event("x\ud800", at=T0) is False
    q = quarantined(tmp_path)
    assert q.height == 3 and any("not valid Unicode" in r for r in q.get_column("reason").to_list())


def test_a_planted_compaction_journal_cannot_delete_outside_or_stop_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    victim = tmp_path / "victim.parquet"
    victim.write_bytes(b"keep me")
    Store(data).close()
    db = sqlite3.connect(data / "spool" / "spool.sqlite")
    db.executemany("INSERT INTO compactions (target, sources) VALUES (?, ?)", [
        ("../victim.parquet", orjson.dumps(["../victim.parquet"]).decode()),
        ("status/x.parquet", "{not json"),
    ])
    db.commit()
    db.close()
    with Store(data) as s:
        assert s.spool.open_compactions() == []
    assert victim.read_bytes() == b"keep me"


def test_when_nothing_can_be_written_rows_stay_spooled_and_the_store_still_opens(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Store(tmp_path)
    s.append_status(rows_for(MAC, 3, start=T0))
    s.close(flush=False)

    def broken(self: Store, ds: str, rows: list[dict], name: str) -> Any:
        raise RuntimeError("the writer is broken")

    monkeypatch.setattr(Store, "_write_status_rows", broken)
    monkeypatch.setattr(Store, "_write_dated_rows", broken)
    with Store(tmp_path) as s:  # opening logs the failure instead of raising it
        with pytest.raises(StoreError, match="they stay in the spool"):
            s.flush()
        assert s.pending() == 3
        monkeypatch.undo()
    q = quarantined(tmp_path)  # the writer works again: the rows moved aside are kept, with why
    assert q.height == 3 and all("the writer is broken" in r for r in q.get_column("reason").to_list())
