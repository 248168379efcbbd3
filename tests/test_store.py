"""Store: spool -> partitioned Parquet, read back by DuckDB and polars, idempotent, crash-recovering."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from navilink_etl.collect.store import (
    Store,
    atomic_write_parquet,
    scan_dataset,
    status_file_schema,
)
from navilink_etl.errors import StoreError
from navilink_etl.status import parse_status, status_row

from .conftest import load_capture

T0 = datetime(2026, 11, 27, 23, 59, 0, tzinfo=UTC)


def rows_for(mac: str, n: int, *, start: datetime = T0, step_s: float = 30.0) -> list[dict]:
    msg = load_capture("status_response_heatpump_running.json")
    out = []
    for i in range(n):
        msg["response"]["status"]["currentInstPower"] = 400 + i  # distinct content per row
        msg["response"]["macAddress"] = mac
        st = parse_status(msg)
        out.append(status_row(st, received_at=start + timedelta(seconds=step_s * i), source="test"))
    return out


def duck(sql: str) -> list[tuple]:
    return duckdb.connect().sql(sql).fetchall()


def status_keys(d: Path) -> pl.DataFrame:
    return scan_dataset(d, "status").select("device", "received_at", "content_hash").collect()


def test_status_round_trip_duckdb_and_polars_agree(tmp_path: Path) -> None:
    macs = ["aabbccddeeff", "001122334455"]  # an all-digit MAC must stay a string
    with Store(tmp_path) as s:
        for mac in macs:
            assert s.append_status(rows_for(mac, 6)) == 6  # 23:59:00..00:01:30 spans two dates
        res = s.flush()
        assert res.rows["status"] == 12 and s.pending() == 0
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("status/**/*.parquet"))
    assert len(files) == 4  # 2 devices x 2 UTC dates
    assert all(f.startswith("status/device=") and "/date=2026-11-2" in f for f in files)

    glob = f"{tmp_path}/status/**/*.parquet"
    con = duckdb.connect()
    rel = con.sql(f"select * from read_parquet('{glob}', hive_partitioning=true) "
                  "order by device, received_at")
    duck_rows = rel.fetchall()
    types = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    pol = (pl.scan_parquet(glob, hive_partitioning=True).collect()
           .sort("device", "received_at"))
    assert list(rel.columns) == pol.columns == list(status_file_schema())
    assert types["device"] == "VARCHAR" and types["date"] == "DATE"
    assert pol.schema["device"] == pl.String and pol.schema["date"] == pl.Date
    assert sorted({r[0] for r in duck_rows}) == sorted(macs)
    assert [r[:3] for r in duck_rows] == [r[:3] for r in pol.iter_rows()]
    # the date partition is the UTC date of received_at
    assert pol.filter(pl.col("date") != pl.col("received_at").dt.date()).height == 0
    assert pol.get_column("currentInstPower").to_list()[:6] == list(range(400, 406))


def test_appends_are_idempotent_across_restarts_and_bulk(tmp_path: Path) -> None:
    rows = rows_for("aabbccddeeff", 10)
    with Store(tmp_path) as s:
        assert s.append_status(rows) == 10
        assert s.append_status(rows) == 0  # re-delivery
        s.flush()
        assert s.append_status(rows[:5]) == 0  # after the flush: still known
    with Store(tmp_path) as s:
        assert s.append_status(rows) == 0
        assert s.write_status_frame(pl.DataFrame(rows)) == 0  # bulk path skips stored rows
        more = rows_for("aabbccddeeff", 12)  # 10 identical + 2 new
        assert s.write_status_frame(pl.DataFrame(more)) == 2
    keys = status_keys(tmp_path)
    assert keys.height == 12 and keys.unique().height == 12


def test_restart_replays_spool_without_duplicates(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.append_status(rows_for("aabbccddeeff", 7))
    s.append_event("poll_failed", device="aabbccddeeff", detail="timeout", severity="warning",
                   duration_s=10.0, at=T0)
    s.close(flush=False)  # as if the process died: nothing in Parquet yet
    assert not list(tmp_path.glob("status/**/*.parquet"))
    with Store(tmp_path) as s2:  # opening replays
        assert s2.pending() == 0
    assert status_keys(tmp_path).height == 7
    ev = scan_dataset(tmp_path, "events").collect()
    assert ev.select("kind", "device", "severity", "duration_s").row(0) == (
        "poll_failed", "aabbccddeeff", "warning", 10.0)


def test_interrupted_flush_is_redone_with_the_same_files(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.append_status(rows_for("aabbccddeeff", 5))
    batch = s.spool.begin_flush()
    assert batch is not None
    s._write_batch(batch)  # files written, but the crash comes before the spool is trimmed
    n_files = len(list(tmp_path.glob("status/**/*.parquet")))
    s.close(flush=False)
    with Store(tmp_path):
        pass
    assert len(list(tmp_path.glob("status/**/*.parquet"))) == n_files  # overwritten, not added
    keys = status_keys(tmp_path)
    assert keys.height == 5 and keys.unique().height == 5


def test_compaction_merges_partition_files_and_survives_a_crash(tmp_path: Path) -> None:
    rows = rows_for("aabbccddeeff", 40, start=datetime(2026, 11, 20, 8, tzinfo=UTC))
    with Store(tmp_path) as s:
        for i in range(0, 40, 10):
            s.append_status(rows[i:i + 10])
            s.flush()
        pdir = tmp_path / "status/device=aabbccddeeff/date=2026-11-20"
        assert len(list(pdir.glob("*.parquet"))) == 4
        assert s.compact() == 1
        files = list(pdir.glob("*.parquet"))
        assert len(files) == 1
        assert pl.read_parquet(files[0]).get_column("received_at").is_sorted()
        # a crash after the merged file replaced its sources but before they were unlinked
        s.append_status(rows_for("aabbccddeeff", 45, start=datetime(2026, 11, 20, 8, tzinfo=UTC))[40:])
        s.flush()
        sources = sorted(pdir.glob("*.parquet"))
        merged = pl.read_parquet(sources)
        target = pdir / "part-c-crash.parquet"
        s.spool.journal_compaction(str(target.relative_to(tmp_path)),
                                   [str(p.relative_to(tmp_path)) for p in sources])
        atomic_write_parquet(merged, target)
        s.close(flush=False)
    with Store(tmp_path):  # recovery completes the compaction
        pass
    assert [p.name for p in pdir.glob("*.parquet")] == ["part-c-crash.parquet"]
    keys = status_keys(tmp_path)
    assert keys.height == 45 and keys.unique().height == 45


def test_energy_upsert_latest_fetch_wins(tmp_path: Path) -> None:
    mac = "aabbccddeeff"

    def e(day: int, wh: int, fetched: datetime) -> dict:
        return dict(device=mac, day=date(2026, 11, day), hp_wh=wh, he_wh=0, hp_h=1, he_h=0,
                    fetched_at=fetched, source="test")

    with Store(tmp_path) as s:
        s.append_energy([e(1, 100, T0), e(2, 200, T0)])
        s.flush()
        s.append_energy([e(2, 250, T0 + timedelta(hours=1)), e(3, 300, T0 + timedelta(hours=1))])
        s.flush()
        # an older fetch given in bulk must not override a newer one
        old = pl.DataFrame([e(2, 1, T0 - timedelta(days=1)), e(4, 400, T0)])
        assert s.write_energy_frame(old) == 2
    files = list(tmp_path.glob("energy/**/*.parquet"))
    assert [f.name for f in files] == ["part-0.parquet"]
    got = duck(f"select day, hp_wh from read_parquet('{tmp_path}/energy/**/*.parquet', "
               "hive_partitioning=true) order by day")
    assert got == [(date(2026, 11, 1), 100), (date(2026, 11, 2), 250), (date(2026, 11, 3), 300),
                   (date(2026, 11, 4), 400)]


def test_bulk_frame_computes_missing_hash_like_the_live_path(tmp_path: Path) -> None:
    rows = rows_for("aabbccddeeff", 3)
    df = pl.DataFrame(rows).drop("content_hash")
    with Store(tmp_path) as s:
        assert s.write_status_frame(df) == 3
        s.append_status(rows)  # the same rows arriving live (real hash) ...
        assert s.flush().rows["status"] == 0  # ... are recognised on disk, not written twice
    got = status_keys(tmp_path).sort("received_at").get_column("content_hash").to_list()
    assert got == [r["content_hash"] for r in rows]


def test_old_rows_beyond_key_memory_are_checked_against_disk(tmp_path: Path) -> None:
    old = rows_for("aabbccddeeff", 3, start=datetime(2025, 1, 1, tzinfo=UTC))
    with Store(tmp_path) as s:
        s.append_status(old)
        s.flush()
        s.append_status(rows_for("aabbccddeeff", 3))  # newer data moves the key horizon on
        s.flush()
        assert s.append_status(old) == 3  # forgotten by the spool's key memory ...
        s.flush()
    assert status_keys(tmp_path).height == 6  # ... but not written twice


def test_quarantine_keeps_reason_and_raw_text(tmp_path: Path) -> None:
    with Store(tmp_path) as s:
        assert s.quarantine(reason="not JSON", raw=b'{"response": ', source="mqtt",
                            topic="cmd/52/navilink-aabbccddeeff/st", device="aabbccddeeff",
                            received_at=T0)
    got = duck(f"select reason, raw, device, date from read_parquet('{tmp_path}/quarantine/**/*.parquet',"
               " hive_partitioning=true)")
    assert got == [("not JSON", '{"response": ', "aabbccddeeff", T0.date())]


def test_second_writer_is_refused_and_temporaries_are_cleaned(tmp_path: Path) -> None:
    s = Store(tmp_path)
    with pytest.raises(StoreError, match="in use"):
        Store(tmp_path)
    s.close()
    stray = tmp_path / "status/device=aabbccddeeff/date=2026-11-27/.part-x.parquet.1234.tmp"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"PAR1 half written")
    with Store(tmp_path):
        assert not stray.exists()


def test_unusable_data_dir_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="data directory"):
        Store(blocker / "data")


def test_redelivery_after_the_key_memory_moved_on_is_not_duplicated(tmp_path: Path) -> None:
    day = datetime(2026, 11, 20, tzinfo=UTC)
    old = rows_for("aabbccddeeff", 2, start=day + timedelta(hours=6))  # same UTC date as the horizon
    with Store(tmp_path) as s:
        s.append_status(old)
        s.flush()
        # newest key 26 h + 6 h later: the horizon falls at 12:00 on the same date, after `old`
        s.append_status(rows_for("aabbccddeeff", 1, start=day + timedelta(hours=38)))
        s.flush()
        s.flush()  # the prune happens at the end of a flush
        assert s.append_status(old) == 2  # forgotten by the key memory ...
        s.flush()
    keys = status_keys(tmp_path)
    assert keys.height == 3 == keys.unique().height  # ... but found on disk
