"""The store on object storage: NAVILINK_DATA_DIR=s3://bucket/prefix against moto's S3 server on
127.0.0.1 (a real S3 API): the same layout and guarantees as local disk, a warehouse built from it
equal to the local one, kill -9 during flush and compaction, clear errors, no secret shown."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from navilink_etl.collect.store import Store, scan_dataset
from navilink_etl.config import NaviLinkConfig, load_config
from navilink_etl.errors import ConfigurationError
from navilink_etl.storage import Location

from .s3_helpers import FAKE_SECRET, MotoS3
from .test_store import rows_for

MACS = ("aabbccddeeff", "001122334455")  # an all-digit MAC must stay a string on S3 too


def _location(server: MotoS3, bucket: str, prefix: str = "fleet/a") -> Location:
    return load_config(data_dir=f"s3://{bucket}/{prefix}").location


def _fill(store: Store) -> None:
    for mac in MACS:
        store.append_status(rows_for(mac, 6))  # 23:59:00 .. 00:01:30: two UTC dates
    store.append_energy([{"device": MACS[0], "day": date(2026, 11, 26), "hp_wh": 1200, "he_wh": 0,
                          "hp_h": 3, "he_h": 0, "fetched_at": datetime(2026, 11, 27, tzinfo=UTC),
                          "source": "test"}])
    store.append_event("poll_missed", device=MACS[1], detail="no reply",
                       at=datetime(2026, 11, 27, 12, tzinfo=UTC))
    store.quarantine(reason="bad json", raw="{", source="test",
                     received_at=datetime(2026, 11, 27, 12, tzinfo=UTC))


def _rows(data: Path | str | Location, dataset: str) -> pl.DataFrame:
    return scan_dataset(data, dataset).collect().drop(["date"], strict=False).sort(pl.all())


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["s3:/bucket/x", "s3:bucket", "S3://bucket/x", "s3a://bucket",
                                   "gs://bucket/x", "s3://Bad_Bucket/x", "s3://bucket/../x"])
def test_typos_fail_at_start_naming_the_setting_and_make_no_folder(
        value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAVILINK_DATA_DIR", value)
    with pytest.raises(ConfigurationError, match="NAVILINK_DATA_DIR") as err:
        load_config()
    assert "s3://bucket/prefix" in str(err.value) or "s3://my-bucket" in str(err.value) \
        or "s3://bucket/a/b" in str(err.value)
    with pytest.raises(ConfigurationError, match="NAVILINK_DATA_DIR"):
        Store(Path(value), spool_dir=tmp_path / "spool")  # an s3 URL that went through Path()
    assert not any(p.name.lower().startswith("s3") for p in tmp_path.iterdir())


def test_s3_url_is_kept_and_local_files_default_to_this_folder(tmp_path: Path) -> None:
    cfg = load_config(data_dir="s3://bucket/fleet/", aws_region="eu-west-1")
    assert cfg.is_remote and cfg.data_dir == "s3://bucket/fleet"
    assert cfg.location.url == "s3://bucket/fleet" and cfg.location.join("status") == "bucket/fleet/status"
    assert cfg.spool_path == Path("spool") and cfg.warehouse_path == Path("warehouse.duckdb")
    local = load_config(data_dir=str(tmp_path / "d"))
    assert not local.is_remote and local.spool_path == tmp_path / "d" / "spool"
    assert local.warehouse_path == tmp_path / "d" / "warehouse.duckdb"
    given = load_config(data_dir="s3://bucket", spool_dir=str(tmp_path / "sp"),
                        warehouse=str(tmp_path / "w.duckdb"))
    assert given.spool_path == tmp_path / "sp" and given.warehouse_path == tmp_path / "w.duckdb"


def test_the_store_secret_is_masked_and_never_in_a_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    from navilink_etl.redact import redact

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    cfg = load_config(data_dir="s3://bucket/x")
    assert cfg.location.credentials.secret_access_key == FAKE_SECRET  # read from AWS_*
    assert cfg.location.storage_options()["aws_secret_access_key"] == FAKE_SECRET
    for text in (repr(cfg), str(cfg), repr(cfg.location), repr(cfg.location.credentials),
                 repr(cfg.model_dump())):
        assert FAKE_SECRET not in text
    assert FAKE_SECRET not in redact(f"boto said: secret={FAKE_SECRET} rejected")


def test_unusable_stores_fail_at_open_with_the_fix_and_no_secret(
        s3_env: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spool = tmp_path / "spool"
    with pytest.raises(ConfigurationError, match="bucket 'no-such-bucket' does not exist") as e1:
        Store(_location(s3_env, "no-such-bucket"), spool_dir=spool)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens there
    t = time.monotonic()
    with pytest.raises(ConfigurationError, match=r"cannot reach the S3 endpoint http://127\.0\.0\.1:1") as e2:
        Store(_location(s3_env, "somebucket"), spool_dir=spool)
    assert time.monotonic() - t < 20
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_env.endpoint)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigurationError, match="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        Store(_location(s3_env, "somebucket"), spool_dir=spool)
    for err in (e1, e2):
        assert "NAVILINK_DATA_DIR" in str(err.value) and "fix" in str(err.value)
        assert FAKE_SECRET not in str(err.value)
    assert FAKE_SECRET not in caplog.text
    monkeypatch.setenv("AWS_ENDPOINT_URL", "ftp://x")
    with pytest.raises(ConfigurationError, match=r"^invalid configuration: AWS_ENDPOINT_URL: the S3"):
        load_config(data_dir="s3://bkt/x")


def test_refused_credentials_name_the_keys_not_their_values(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server = MotoS3(extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "4"})  # IAM checks after 4 calls
    try:
        iam = server.client(service="iam")
        iam.create_user(UserName="collector")
        key = iam.create_access_key(UserName="collector")["AccessKey"]
        iam.put_user_policy(UserName="collector", PolicyName="s3", PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", '
            '"Resource": "*"}]}'))
        bucket = server.bucket("authed")
        for k, v in server.env(key["AccessKeyId"], key["SecretAccessKey"]).items():
            monkeypatch.setenv(k, v)
        with Store(_location(server, bucket), spool_dir=tmp_path / "ok") as s:  # the right keys
            s.append_status(rows_for(MACS[0], 2))
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
        with pytest.raises(ConfigurationError, match="refused the credentials") as err:
            Store(_location(server, bucket), spool_dir=tmp_path / "bad")
        assert "AWS_SECRET_ACCESS_KEY" in str(err.value) and FAKE_SECRET not in str(err.value)
        assert key["SecretAccessKey"] not in str(err.value)
    finally:
        server.stop()


# --- the store ----------------------------------------------------------------------------------


def test_store_round_trip_on_s3_matches_local_disk(s3_env: MotoS3, tmp_path: Path,
                                                  capfd: pytest.CaptureFixture[str],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bucket = s3_env.bucket()
    loc = _location(s3_env, bucket)
    with Store(loc, spool_dir=tmp_path / "spool", retire_after=timedelta(0)) as s3, \
            Store(tmp_path / "local") as local:
        for s in (s3, local):
            _fill(s)
            s.flush()
            _fill(s)  # re-delivered: nothing new
            s.append_status(rows_for(MACS[0], 3, start=datetime(2026, 11, 28, 1, tzinfo=UTC)))
            s.flush()
        assert s3.compact() == local.compact() > 0
        assert s3.pending() == 0
    keys = s3_env.keys(bucket, "fleet/a/")
    assert not any("spool" in k or k.endswith(".tmp") for k in keys)  # the spool stays local
    rel = sorted(k.removeprefix("fleet/a/").rsplit("/", 1)[0] for k in keys)
    local_rel = sorted(p.relative_to(tmp_path / "local").parent.as_posix()
                       for p in (tmp_path / "local").glob("*/**/*.parquet"))
    assert sorted(set(rel)) == sorted(set(local_rel))  # the same folders
    assert f"status/device={MACS[1]}/date=2026-11-28" in rel and "energy/device=aabbccddeeff" in rel
    for ds in ("status", "energy", "events", "quarantine"):
        remote, here = _rows(loc, ds), _rows(tmp_path / "local", ds)
        assert remote.height > 0 and remote.equals(here), ds
    status = _rows(loc, "status")
    assert status.height == 15 and status["device"].dtype == pl.String
    assert status.select("device", "received_at", "content_hash").is_unique().all()
    # any engine reads the same layout: DuckDB through the registered filesystem
    con = duckdb.connect()
    loc.register(con)
    n = con.sql(f"select count(distinct (device, received_at, content_hash)) from read_parquet("
                f"'{loc.url}/status/**/*.parquet', hive_partitioning=false)").fetchall()[0][0]
    assert n == 15
    out = capfd.readouterr()
    assert FAKE_SECRET not in out.out + out.err + caplog.text
    assert FAKE_SECRET not in repr(loc) and FAKE_SECRET not in repr(load_config())


def test_compaction_keeps_sources_for_readers_then_retires_them(s3_env: MotoS3, tmp_path: Path) -> None:
    bucket = s3_env.bucket()
    loc = _location(s3_env, bucket)
    spool = tmp_path / "spool"
    with Store(loc, spool_dir=spool, retire_after=timedelta(hours=1)) as s:
        for i in range(3):  # three flushes: three files in each partition
            s.append_status(rows_for(MACS[0], 4, start=datetime(2026, 11, 27, 10, i, tzinfo=UTC)))
            s.flush()
        before = set(s3_env.keys(bucket))
        assert s.compact() == 1
        assert s.compact() == 0  # sources waiting for deletion are not merged again
    during = set(s3_env.keys(bucket))
    merged = during - before
    assert len(merged) == 1 and before < during  # the merged object beside its sources
    raw = _rows(loc, "status")
    assert raw.height == 24  # a reader listing now sees each row twice ...
    assert raw.select("device", "received_at", "content_hash").unique().height == 12  # ... once by key
    with Store(loc, spool_dir=spool, retire_after=timedelta(0)):  # the grace has passed
        pass
    assert set(s3_env.keys(bucket)) == merged
    assert _rows(loc, "status").height == 12


def test_two_collectors_share_a_store_and_merge_only_their_own_files(s3_env: MotoS3,
                                                                    tmp_path: Path) -> None:
    bucket = s3_env.bucket()
    loc = _location(s3_env, bucket)
    at = datetime(2026, 11, 27, 12, tzinfo=UTC)
    with Store(loc, spool_dir=tmp_path / "a", retire_after=timedelta(0)) as a, \
            Store(loc, spool_dir=tmp_path / "b", retire_after=timedelta(0)) as b:
        for i in range(2):  # both write events into the same date= partition, twice
            for name, s in (("a", a), ("b", b)):
                s.append_event("poll_missed", device=MACS[0], detail=f"{name}{i}", at=at)
                s.flush()
        assert a.compact() == 1
        left = s3_env.keys(bucket, "fleet/a/events/")
        assert len(left) == 3 and sum(f"-{b.spool.spool_id}-" in k for k in left) == 2  # b's untouched
        assert b.compact() == 1
    events = _rows(loc, "events")
    assert sorted(events["detail"]) == ["a0", "a1", "b0", "b1"]  # each once
    assert len(s3_env.keys(bucket, "fleet/a/events/")) == 2


# --- the warehouse from a store on S3 -----------------------------------------------------------

TZ = "America/Chicago"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated days of one heater, with ground truth, on local disk (shared)."""
    from navilink_etl.sim.simulate import simulate

    data = tmp_path_factory.mktemp("sim") / "data"
    simulate(data, days=2, devices=1, interval_s=30, start=datetime(2026, 1, 5, tzinfo=UTC), seed=5,
             ems_tz=TZ)
    return data


def _tables(path: Path) -> dict[str, pl.DataFrame]:
    from navilink_etl import marts

    con = duckdb.connect(str(path), read_only=True)
    try:
        return {n: con.sql(f"select * from {n} order by all").pl() for n in [*marts.TABLES, "int_cycles"]}
    finally:
        con.close()


def test_warehouse_from_s3_equals_the_same_data_on_local_disk(
        simulated: Path, s3_env: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from polars.testing import assert_frame_equal

    from navilink_etl import warehouse

    bucket = s3_env.bucket()
    loc = _location(s3_env, bucket, "fleet")
    for f in sorted(simulated.glob("*/**/*.parquet")):
        loc.put_atomic(loc.join(f.relative_to(simulated).as_posix()), f)
    monkeypatch.chdir(tmp_path)  # the remote store's local files default to this folder
    remote = load_config(data_dir=f"s3://{bucket}/fleet", polling_interval=30, timezone=TZ)
    local = NaviLinkConfig(data_dir=simulated, polling_interval=30, timezone=TZ)
    res = warehouse.refresh(remote)
    assert res.full and res.path == tmp_path / "warehouse.duckdb" and res.devices == 1
    warehouse.refresh(local)
    a, b = _tables(tmp_path / "warehouse.duckdb"), _tables(simulated / "warehouse.duckdb")
    assert b["heating_cycles"].height >= 2 and b["energy_daily"].height >= 2
    for name in a:
        assert_frame_equal(a[name], b[name], check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    assert not (tmp_path / "s3:").exists() and not any(k.endswith(".duckdb") for k in s3_env.keys(bucket))
    # the marts went to the store as Parquet partitions too, the same files as on local disk
    on_s3 = sorted(k.split("fleet/", 1)[1] for k in s3_env.keys(bucket) if "/marts/" in k)
    on_disk = sorted(p.relative_to(simulated).as_posix() for p in (simulated / "marts").rglob("*.parquet"))
    assert len(on_disk) >= 10 and on_s3 == on_disk
    with warehouse.connect(remote) as con:
        assert con.sql(f"select count(*) from read_parquet('s3://{bucket}/fleet/marts/energy_daily/**/*.parquet', "
                       "hive_partitioning = true)").fetchall()[0][0] == b["energy_daily"].height
    # incremental: a new file on S3 is picked up through the listing, nothing else recomputed
    again = warehouse.refresh(remote)
    assert not again.full and again.files_changed == 0
    f = next(iter(sorted(simulated.glob("status/device=*/date=*/*.parquet"))))
    extra = pl.read_parquet(f).head(10).with_columns(
        pl.col("received_at") + timedelta(milliseconds=1), pl.col("content_hash") + "x")
    spool = tmp_path / "spool"
    with Store(remote.location, spool_dir=spool, retire_after=timedelta(hours=1)) as st:
        assert st.write_status_frame(extra.head(5)) == 5  # two files of this store's own
        assert st.write_status_frame(extra.tail(5)) == 5
    inc = warehouse.refresh(remote)
    assert not inc.full and inc.files_changed == 2 and inc.devices == 1
    with warehouse.connect(remote) as con:  # readers get the views over the S3 globs too
        n = con.sql("select count(*) from stg_status").fetchall()[0][0]
    assert n == pl.concat([pl.read_parquet(p) for p in simulated.glob("status/**/*.parquet")]).height + 10
    # a compaction whose sources are still beside the merged object (the readers' grace): the
    # refresh lists both and counts each sample once
    before = _tables(tmp_path / "warehouse.duckdb")
    with Store(remote.location, spool_dir=spool, retire_after=timedelta(hours=1)) as st:
        assert st.compact() == 1  # its own two files; the simulator's file is not its to merge
    listed = [k for k in s3_env.keys(bucket) if "/status/" in k]
    sim_files = len(list(simulated.glob("status/**/*.parquet")))
    assert sum("/part-c" in k for k in listed) == 1 and len(listed) == sim_files + 2 + 1
    mid = warehouse.refresh(remote)
    assert not mid.full and mid.files_changed == 1  # the merged object appeared
    after = _tables(tmp_path / "warehouse.duckdb")
    for name in before:
        assert_frame_equal(after[name], before[name], check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    with warehouse.connect(remote) as con:
        assert con.sql("select count(*) from stg_status").fetchall()[0][0] == n


# --- kill -9 during flush and during compaction, against the S3 endpoint ------------------------

_CHILD = """
import sys
from datetime import UTC, datetime, timedelta
sys.path.insert(0, {root!r})
from navilink_etl.collect.store import Store
from navilink_etl.config import load_config
from tests.test_store import rows_for

loc = load_config(data_dir={url!r}).location
store = Store(loc, spool_dir={spool!r}, retire_after=timedelta(0))
t0 = datetime(2026, 3, 1, 12, tzinfo=UTC) + timedelta(hours={trial})
for i in range(1000):
    for mac in ("aabbccddeeff", "001122334455"):
        store.append_status(rows_for(mac, 5, start=t0 + timedelta(minutes=3 * i)))
    print("ACK", i, flush=True)
    if {phase!r} == "compact" and i % 3 == 2:
        store.flush()
        print("COMPACT", i, flush=True)
        store.compact()
    else:
        print("FLUSH", i, flush=True)
        store.flush()
"""


def _kill_during(phase: str, trial: int, loc: Location, spool: Path, delay_s: float) -> int:
    """Run a writer, SIGKILL it ``delay_s`` after it starts its 2nd flush or compaction; returns
    the number of acknowledged batches (each: 5 rows for each of 2 devices)."""
    root = str(Path(__file__).resolve().parents[1])
    code = _CHILD.format(root=root, url=loc.url, spool=str(spool), trial=trial, phase=phase)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    acked, marks = -1, 0
    assert proc.stdout is not None
    for line in proc.stdout:
        word, i = line.split()
        if word == "ACK":
            acked = int(i)
        elif word == phase.upper():
            marks += 1
            if marks == 2:
                time.sleep(delay_s)
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(30)
    err = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    return acked + 1


def test_kill_9_on_s3_during_flush_and_compaction_leaves_no_partial_object_nor_duplicate(
        s3_env: MotoS3, tmp_path: Path) -> None:
    bucket = s3_env.bucket()
    loc = _location(s3_env, bucket)
    spool = tmp_path / "spool"
    acked = 0
    for trial, (phase, delay) in enumerate((("flush", 0.0), ("compact", 0.02), ("flush", 0.05))):
        acked += _kill_during(phase, trial, loc, spool, delay)
        for key in s3_env.keys(bucket):  # every visible object is a whole Parquet file
            assert key.endswith(".parquet"), key
            pl.read_parquet(io.BytesIO(s3_env.client().get_object(Bucket=bucket, Key=key)["Body"].read()))
    with Store(loc, spool_dir=spool, retire_after=timedelta(0)) as s:  # replay + recovery
        assert s.pending() == 0
    rows = _rows(loc, "status").select("device", "received_at", "content_hash")
    assert rows.height == rows.unique().height  # no duplicate after the crashes
    assert rows.height >= acked * 10  # nothing acknowledged is lost
    assert any("/part-c" in k for k in s3_env.keys(bucket))  # a compaction did complete


def test_cli_stops_with_the_setting_and_creates_no_s3_folder(s3_env: MotoS3, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from navilink_etl.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for value, says in (("s3://missing-bucket/fleet", "bucket 'missing-bucket' does not exist"),
                        ("s3:/bucket/fleet", "s3://bucket/prefix")):
        monkeypatch.setenv("NAVILINK_DATA_DIR", value)
        result = runner.invoke(app, ["refresh"])
        assert result.exit_code == 2, result.output
        assert "NAVILINK_DATA_DIR" in result.output and says in result.output
        assert FAKE_SECRET not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no s3: folder, no warehouse, no spool
