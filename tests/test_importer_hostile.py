"""Importer against hostile files: every bad line is a rejection with its line number, kept in
quarantine with its raw text; the good lines around it are imported once; nothing is written
outside data/; the CLI prints a summary and no traceback. Hypothesis at the line boundary."""

from __future__ import annotations

import copy
import csv
import io
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from navilink_etl.collect.importer import MAX_LINE_BYTES, import_file
from navilink_etl.collect.store import Store, scan_dataset
from navilink_etl.config import NaviLinkConfig

from .conftest import load_capture

MAC = "aabbccddeeff"
T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
TOPIC = f"cmd/52/navilink-{MAC}/st"
# The full run: FUZZ_EXAMPLES=10000 TMPDIR=/dev/shm pytest tests/test_importer_hostile.py -k fuzzed --timeout 0
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
_STATUS = load_capture("status_response_heatpump_running.json")


_CFG = NaviLinkConfig(timezone="UTC")


def cfg(data: Path) -> NaviLinkConfig:
    return _CFG.model_copy(update={"data_dir": data})


def good_line(i: int) -> dict[str, Any]:
    msg = copy.deepcopy(_STATUS)
    msg["response"]["status"]["currentInstPower"] = 1000 + i
    return {"received_at": (T0 + timedelta(seconds=30 * i)).isoformat(), "topic": TOPIC, "message": msg}


def status_with(**response: Any) -> dict[str, Any]:
    msg = copy.deepcopy(_STATUS)
    msg["response"].update(response)
    return msg


def power_of(msg: dict[str, Any], value: Any) -> dict[str, Any]:
    msg = copy.deepcopy(msg)
    msg["response"]["status"]["currentInstPower"] = value
    return msg


def energy(**usage: Any) -> dict[str, Any]:
    month = {"year": 2026, "month": 11, "data": [{"hpUsage": 900, "heUsage": 0, "hpTime": 2, "heTime": 0}]}
    return {"response": {"macAddress": MAC, "typeOfUsage": 2, "usage": [month | usage]}}


def hostile_jsonl() -> list[tuple[bytes, str]]:
    """(line, what the rejection reason must mention)."""
    def line(obj: Any) -> bytes:
        return orjson.dumps(obj)

    at = T0.isoformat()
    msg = _STATUS
    return [
        (line({"received_at": "0001-01-01T00:00:00+05:00", "message": msg}), "received_at"),
        (line({"received_at": "9999-12-31T23:59:59-05:00", "message": msg}), "received_at"),
        (line({"received_at": "2014-12-31T23:59:59Z", "message": msg}), "outside 2015-01-01"),
        (line({"received_at": (NOW + timedelta(days=2)).isoformat(), "message": msg}), "machine clock"),
        (line({"received_at": at, "message": energy(year=10**18)}), "year"),
        # one below all ones: not an "unknown" marker the parser may drop, just impossible
        (line({"received_at": at, "message": energy(data=[{"hpUsage": 2**64 - 2}])}), "18446744073709551614"),
        (line({"received_at": at, "message": power_of(msg, 2**64 - 1)}), "currentInstPower"),
        (line({"received_at": at, "message": status_with(macAddress="aa/../../../../escaped_dir")}), "macAddress"),
        (line({"received_at": at, "topic": "cmd/52/navilink-001122334455/st", "message": msg}), "differs"),
        (line({"received_at": at, "topic": "cmd/52/navilink-../../../x/st",
               "message": status_with(macAddress=None)}), "MAC"),
        (line({"received_at": at, "message": status_with(macAddress="default")}), "macAddress"),
        (b'{"received_at": "2026-11-20T12:00:00Z", "message": {"response": ' + b"\xff\xfe}}", "not JSON"),
        (b'{"received_at": "2026-11-20T12:00:00Z", "message": NaN}', "not JSON"),
        (b"[" * 2000 + b"]" * 2000, "not JSON"),
        (line({"received_at": 12345, "message": msg}), "ISO-8601"),
        (b"null", "expected"),
        (b'{"received_at": "' + b"9" * (MAX_LINE_BYTES + 10) + b'"}', "longer than"),
    ]


def files_outside(root: Path, data: Path, *allowed: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and data not in p.parents and p not in allowed]


def test_hostile_jsonl_lines_are_rejected_by_line_and_kept_in_quarantine(tmp_path: Path) -> None:
    hostile = hostile_jsonl()
    lines: list[bytes] = []
    expected_bad: dict[int, str] = {}
    for i, (bad, why) in enumerate(hostile):
        lines.append(orjson.dumps(good_line(i)))
        lines.append(bad)
        expected_bad[len(lines)] = why
    lines.append(orjson.dumps(good_line(len(hostile))))
    path = tmp_path / "capture.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    data = tmp_path / "data"
    res = import_file(cfg(data), path, now=NOW)

    assert res.imported == len(hostile) + 1 and res.rejected_total == len(hostile)
    assert [n for n, _ in res.rejected] == list(expected_bad)
    for n, reason in res.rejected:
        assert expected_bad[n] in reason, (n, reason)
    keys = scan_dataset(data, "status").select("received_at", "content_hash").collect()
    assert keys.height == keys.unique().height == len(hostile) + 1
    q = scan_dataset(data, "quarantine").collect().sort("reason")
    assert q.height == len(hostile)
    assert set(q.get_column("source")) == {"import-jsonl"}
    for n in expected_bad:
        row = q.filter(pl.col("reason").str.starts_with(f"capture.jsonl line {n}: "))
        assert row.height == 1 and row.get_column("raw")[0]
    summary = str(res).splitlines()[-1]
    assert summary == (f"{len(hostile) + 1} imported, {len(hostile)} rejected "
                       f"(see {data / 'quarantine' / 'date=2026-11-28'})")
    assert not list(data.rglob("date=9999*")) and not list(tmp_path.rglob("*escaped_dir*"))
    assert files_outside(tmp_path, data, path) == []
    assert import_file(cfg(data), path, now=NOW).imported == 0  # a second import adds nothing


def test_hostile_csv_lines_are_rejected_by_line(tmp_path: Path) -> None:
    header = ["timestamp", "mac_address", "command", "operation_mode", "dhw_operation_setting",
              "dhw_temperature_raw", "dhw_temperature_setting_raw", "tank_upper_temperature_raw",
              "tank_lower_temperature_raw", "current_inst_power", "comp_use", "heat_upper_use",
              "heat_lower_use", "temperature_type"]

    def row(i: int, **over: str) -> list[str]:
        rec = {"timestamp": (T0 + timedelta(minutes=i)).isoformat(), "mac_address": "AA:BB:CC:DD:EE:FF",
               "command": "16777219", "operation_mode": "32", "dhw_operation_setting": "1",
               "dhw_temperature_raw": "117", "dhw_temperature_setting_raw": "120",
               "tank_upper_temperature_raw": "586", "tank_lower_temperature_raw": "536",
               "current_inst_power": str(400 + i), "comp_use": "2", "heat_upper_use": "1",
               "heat_lower_use": "1", "temperature_type": "CELSIUS"} | over
        return [rec[h] for h in header]

    def text(cells: list[str]) -> bytes:
        out = io.StringIO(newline="")
        csv.writer(out).writerow(cells)
        return out.getvalue().encode()

    bad: list[tuple[bytes, str]] = [
        (text(row(1, dhw_temperature_raw="inf")), "dhw_temperature_raw"),
        (text(row(2, current_inst_power="nan")), "current_inst_power"),
        (text(row(3)).replace(b"CELSIUS", b"CEL\xffSIUS"), "not UTF-8"),
        (text(row(4, temperature_type="x" * 200_000)), "field larger than field limit"),
        (text(row(5, mac_address="aa/../../../../escaped_dir")), "mac_address"),
        (text(row(6, timestamp="0001-01-01T00:00:00+05:00")), "timestamp"),
        (text(row(7, timestamp="9999-12-31T23:59:59-05:00")), "timestamp"),
        (text(row(8)[:5]), "cells"),
        (text(row(9, tank_upper_temperature_raw="1e300")), "tankUpperTemperature"),
        (b"x" * (MAX_LINE_BYTES + 1) + b"\r\n", "longer than"),
    ]
    lines = [text(header)]
    expected: dict[int, str] = {}
    for i, (line, why) in enumerate(bad):
        lines.append(text(row(100 + i)))
        lines.append(line)
        expected[len(lines)] = why
    lines.append(text(row(200)))
    path = tmp_path / "monitor.csv"
    path.write_bytes(b"".join(lines))
    data = tmp_path / "data"
    res = import_file(cfg(data), path, now=NOW)
    assert [n for n, _ in res.rejected] == list(expected), res.rejected
    for n, reason in res.rejected:
        assert expected[n] in reason, (n, reason)
    assert res.imported == len(bad) + 1
    powers = scan_dataset(data, "status").collect().get_column("currentInstPower").sort().to_list()
    assert powers == [400 + 100 + i for i in range(len(bad))] + [600]
    assert scan_dataset(data, "quarantine").collect().height == len(bad)
    assert files_outside(tmp_path, data, path) == []


def _cli(args: list[str], cwd: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAVILINK_")}
    env.update(NAVILINK_DATA_DIR=str(data), NAVILINK_TIMEZONE="UTC", HOME=str(cwd))
    return subprocess.run([sys.executable, "-m", "navilink_etl", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_import_of_a_hostile_capture(tmp_path: Path) -> None:
    """End to end: good samples mixed with every hostile line above, through the command line;
    then the same data folder takes another import and a short collect."""
    hostile = [bad for bad, _ in hostile_jsonl()]
    now_good = [{"received_at": (datetime.now(UTC) - timedelta(hours=1, seconds=i)).isoformat(),
                 "topic": TOPIC, "message": power_of(_STATUS, 2000 + i)} for i in range(3)]
    lines = [orjson.dumps(good_line(i)) for i in range(5)] + hostile + [orjson.dumps(x) for x in now_good]
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(b"\n".join(lines) + b"\n")
    work, data = tmp_path / "work", tmp_path / "work" / "data"
    work.mkdir()
    done = _cli(["import", str(capture)], work, data)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"8 imported, {len(hostile)} rejected (see {data}/quarantine/")
    assert files_outside(tmp_path, data, capture) == []
    assert not list(tmp_path.rglob("date=9999*")) and not list(tmp_path.rglob("*escaped_dir*"))

    with Store(data) as s:  # the store is usable afterwards: open, append, flush
        assert s.pending() == 0
        assert s.append_status([]) == 0
    again = _cli(["import", str(capture)], work, data)
    assert again.returncode == 0 and "0 status sample(s) imported, 8 already stored" in again.stdout
    assert scan_dataset(data, "status").collect().height == 8

    collect = _cli(["collect", "--duration", "0.05", "--devices", "1"], work, data)  # embedded cloud
    assert collect.returncode == 0 and "Traceback" not in collect.stdout + collect.stderr, collect.stderr
    assert scan_dataset(data, "status").collect().height > 8

    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_bytes(b"\n".join(hostile[:4]) + b"\n")
    failed = _cli(["import", str(only_bad)], work, data)
    assert failed.returncode == 1 and "nothing in" in failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr


# --- hypothesis at the line boundary --------------------------------------------------------------

_values = st.one_of(
    st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.text(max_size=20),
    st.none(), st.booleans(), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_times = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()),
    st.datetimes().map(lambda t: t.isoformat()), st.text(max_size=40), st.integers(), st.none(),
)
_macs = st.one_of(st.just(MAC), st.text(max_size=30), st.from_regex(r"[0-9a-fA-F:]{12,17}", fullmatch=True), st.none())


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A captured status or energy reply with one field replaced by anything."""
    if draw(st.booleans()):
        msg = copy.deepcopy(_STATUS)
        key = draw(st.sampled_from(sorted(msg["response"]["status"])))
        msg["response"]["status"][key] = draw(_values)
    else:
        msg = energy(year=draw(st.one_of(st.integers(), st.just(2026))),
                     month=draw(st.one_of(st.integers(min_value=-2, max_value=14), _values)))
        msg["response"]["usage"][0]["data"][0]["hpUsage"] = draw(_values)
    msg["response"]["macAddress"] = draw(_macs)
    obj = {"received_at": draw(_times), "topic": draw(st.one_of(st.none(), st.text(max_size=40),
                                                                 st.just(TOPIC))), "message": msg}
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return repr(obj).encode()


_junk = st.one_of(st.binary(max_size=200), _mutated(), st.text(max_size=200).map(str.encode))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(junk=st.lists(_junk, min_size=1, max_size=4))
def test_fuzzed_jsonl_lines_never_escape_and_good_lines_land_once(junk: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines, good = [], []
        for i, bad in enumerate(junk):
            good.append(orjson.dumps(good_line(i)))
            lines += [good[-1], bad.replace(b"\n", b" ").replace(b"\r", b" ")]
        path = root / "fuzz.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        res = import_file(cfg(root / "data"), path, now=NOW)  # must not raise
        st_rows = scan_dataset(root / "data", "status").collect()
        keys = st_rows.select("device", "received_at", "content_hash")
        assert keys.height == keys.unique().height
        powers = set(st_rows.filter(pl.col("device") == MAC).get_column("currentInstPower").to_list())
        assert {1000 + i for i in range(len(junk))} <= powers
        assert res.rejected_total + res.status_rows + res.skipped + (res.energy_days > 0) <= res.lines
        assert files_outside(root, root / "data", path) == []


_cells = st.one_of(st.text(max_size=30), st.sampled_from(["inf", "-inf", "nan", "1e309", "", "None",
                                                          "9" * 40, "AA:BB:CC:DD:EE:FF", "../../x"]))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(cells=st.lists(st.tuples(st.sampled_from(["timestamp", "mac_address", "dhw_temperature_raw",
                                                 "current_inst_power", "operation_mode", "comp_use",
                                                 "temperature_type", "dhw_temperature"]), _cells),
                      min_size=1, max_size=4),
       junk=st.lists(st.binary(max_size=100).map(lambda b: b.replace(b'"', b"")), max_size=2))
def test_fuzzed_csv_cells_never_escape(cells: list[tuple[str, str]], junk: list[bytes]) -> None:
    header = ["timestamp", "mac_address", "command", "operation_mode", "dhw_operation_setting",
              "dhw_temperature", "dhw_temperature_raw", "dhw_temperature_setting_raw",
              "tank_upper_temperature_raw", "tank_lower_temperature_raw", "current_inst_power",
              "comp_use", "heat_upper_use", "heat_lower_use", "temperature_type"]
    base = {"mac_address": MAC, "command": "16777219", "operation_mode": "32", "dhw_operation_setting": "1",
            "dhw_temperature": "", "dhw_temperature_raw": "117", "dhw_temperature_setting_raw": "120",
            "tank_upper_temperature_raw": "586", "tank_lower_temperature_raw": "536", "comp_use": "2",
            "heat_upper_use": "1", "heat_lower_use": "1", "temperature_type": "CELSIUS"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "fuzz.csv"
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for i in range(3):
                w.writerow([{**base, "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
                             "current_inst_power": str(100 + i)}[h] for h in header])
            bad = {**base, "timestamp": T0.isoformat(), "current_inst_power": "7"} | dict(cells)
            w.writerow([bad[h] for h in header])
        with path.open("ab") as fb:
            for j in junk:
                fb.write(j.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n")
        import_file(cfg(root / "data"), path, now=NOW)  # must not raise
        df = scan_dataset(root / "data", "status").collect()
        assert {100, 101, 102} <= set(df.get_column("currentInstPower").to_list())
        keys = df.select("device", "received_at", "content_hash")
        assert keys.height == keys.unique().height
        assert files_outside(root, root / "data", path) == []


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xff\xfe\n"])
def test_a_file_with_nothing_readable_is_reported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    res = import_file(cfg(tmp_path / "data"), path, now=NOW)
    assert res.nothing_read and res.imported == 0


def test_an_over_long_line_is_never_held_in_memory(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "big.jsonl"
    with path.open("wb") as fh:
        fh.write(orjson.dumps(good_line(0)) + b"\n")
        for _ in range(20):  # a 20 MB line
            fh.write(b"x" * (1 << 20))
        fh.write(b"\n" + orjson.dumps(good_line(1)) + b"\n")
    tracemalloc.start()
    res = import_file(cfg(tmp_path / "data"), path, now=NOW)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert res.imported == 2 and [n for n, _ in res.rejected] == [2]
    assert "line of 20971521 bytes" in res.rejected[0][1]
    assert peak < 8 * MAX_LINE_BYTES  # a few line buffers, never the 20 MB


def test_a_reply_the_store_cannot_take_is_rejected_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Store.write_energy_frame

    def picky(self: Store, df: pl.DataFrame) -> int:
        if 901 in df.get_column("hp_wh").to_list():
            raise RuntimeError("cannot take this reply")
        return real(self, df)

    monkeypatch.setattr(Store, "write_energy_frame", picky)
    bad = energy()
    bad["response"]["usage"][0]["data"][0]["hpUsage"] = 901
    lines = [{"received_at": T0.isoformat(), "message": energy()}, {"received_at": T0.isoformat(), "message": bad},
             good_line(0)]
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    res = import_file(cfg(tmp_path / "data"), path, now=NOW)
    assert res.rejected == [(2, "RuntimeError: cannot take this reply")]
    assert res.energy_days == 1 and res.imported == 1
