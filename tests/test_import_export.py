"""Import (JSONL of MQTT messages, nwp500-python monitor CSV) and export (CSV, JSONL, Parquet)."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from navilink_etl.collect.export import CSV_COLUMNS, export
from navilink_etl.collect.importer import import_file
from navilink_etl.collect.store import scan_dataset
from navilink_etl.config import NaviLinkConfig

from .conftest import load_capture

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MAC = "aabbccddeeff"
FIXTURES = (
    "status_response_heatpump_running.json", "status_response_standby_idle.json",
    "status_ack_set_high_demand_electric_element_running.json",
    "status_push_heat_source_change_67108892.json",
)  # fmt: skip


def cfg(data: Path, tz: str = "UTC") -> NaviLinkConfig:
    return NaviLinkConfig(data_dir=data, timezone=tz)


def jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines))
    return path


def keys(data: Path) -> pl.DataFrame:
    return scan_dataset(data, "status").select("device", "received_at", "content_hash").collect()


def energy_reply() -> dict[str, Any]:
    days = [{"hpUsage": 1000 + d, "heUsage": 0, "hpTime": 3, "heTime": 0} for d in range(30)]
    return {"protocolVersion": 2, "clientID": "c", "sessionID": "1",
            "response": {"deviceType": 52, "macAddress": MAC, "typeOfUsage": 2,
                         "total": {}, "usage": [{"year": 2026, "month": 11, "data": days}]}}


def test_jsonl_import_reports_rejects_and_never_duplicates(tmp_path: Path) -> None:
    good = [{"received_at": (T0 + timedelta(seconds=30 * i)).isoformat(), "message": load_capture(f)}
            for i, f in enumerate(FIXTURES)]
    text_msg = {"received_at": "2026-11-20T12:05:00Z", "topic": "cmd/52/navilink-aabbccddeeff/st",
                "message": orjson.dumps(load_capture(FIXTURES[1])).decode()}  # the raw text form
    request = {"received_at": "2026-11-20T12:06:00Z",
               "message": {"clientID": "c", "request": {"command": 16777219}}}
    bad_status = load_capture(FIXTURES[0])
    bad_status["response"]["status"]["dhwTemperature"] = "hot"
    lines: list[Any] = [*good, text_msg, request,
                        b'{"received_at": "2026-11-20T12:07:00Z", "message": {"response": ',  # line 7
                        {"received_at": "2026-11-20 12:08:00", "message": load_capture(FIXTURES[0])},  # 8
                        {"received_at": "2026-11-20T12:09:00Z", "message": bad_status},  # line 9
                        {"received_at": "2026-11-20T12:10:00Z", "message": energy_reply()}]
    path = jsonl(tmp_path / "capture.jsonl", lines)
    res = import_file(cfg(tmp_path / "data"), path)
    assert (res.lines, res.status_rows, res.imported, res.skipped) == (10, 5, 5, 1)
    assert [n for n, _ in res.rejected] == [7, 8, 9]
    assert "not JSON" in res.rejected[0][1] and "UTC offset" in res.rejected[1][1]
    assert "dhwTemperature" in res.rejected[2][1]
    assert res.energy_days == 21  # 1-21 November: later days had not happened at 2026-11-20T12:10Z
    again = import_file(cfg(tmp_path / "data"), path)
    assert again.imported == 0 and again.duplicates == 5
    k = keys(tmp_path / "data")
    assert k.height == k.unique().height == 5
    st = scan_dataset(tmp_path / "data", "status").collect()
    assert set(st.get_column("source")) == {"import-jsonl"}
    assert sorted(st.get_column("command").unique().to_list()) == [16777219, 33554437, 67108892]


def _collected(tmp_path: Path) -> Path:
    lines = [{"received_at": (T0 + timedelta(minutes=5 * i)).isoformat(),
              "message": load_capture(FIXTURES[i % 4])} for i in range(12)]
    lines.append({"received_at": (T0 + timedelta(days=1)).isoformat(), "message": load_capture(FIXTURES[0])})
    data = tmp_path / "data"
    import_file(cfg(data), jsonl(tmp_path / "in.jsonl", lines))
    return data


def test_csv_export_has_monitor_columns_in_fahrenheit(tmp_path: Path) -> None:
    data = _collected(tmp_path)
    out = export(cfg(data), "csv", tmp_path / "out.csv", device=MAC, start=date(2026, 11, 20),
                 end=date(2026, 11, 20))
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 12  # the next day's sample is outside the range
    first = rows[0]  # the heat-pump-running capture: 117 half-degC, tank 58.6 / 53.6 degC
    assert first["timestamp"] == T0.isoformat(timespec="microseconds")
    assert float(first["dhw_temperature"]) == pytest.approx(58.5 * 9 / 5 + 32, abs=0.05)
    assert float(first["tank_upper_temperature"]) == pytest.approx(58.6 * 9 / 5 + 32, abs=0.05)
    assert float(first["tank_lower_temperature"]) == pytest.approx(53.6 * 9 / 5 + 32, abs=0.05)
    assert (first["dhw_charge_percent"], first["current_inst_power"], first["operation_mode"]) == ("92", "432", "32")
    assert first["comp_use"] == "2"


def test_jsonl_export_round_trips_through_import(tmp_path: Path) -> None:
    data = _collected(tmp_path)
    out = export(cfg(data), "jsonl", tmp_path / "out.jsonl")
    res = import_file(cfg(tmp_path / "other"), out)
    assert res.rejected == [] and res.imported == 13
    a = keys(data).sort("received_at")
    b = keys(tmp_path / "other").sort("received_at")
    assert a.equals(b)  # same identity: content hashes survive the round trip


def test_parquet_export_filters_by_device_and_day(tmp_path: Path) -> None:
    data = _collected(tmp_path)
    out = export(cfg(data), "parquet", tmp_path / "x.parquet", start=date(2026, 11, 21))
    df = pl.read_parquet(out)
    assert df.height == 1 and df.get_column("date").to_list() == [date(2026, 11, 21)]
    assert export(cfg(data), "parquet", tmp_path / "none.parquet", device="001122334455").exists()
    assert pl.read_parquet(tmp_path / "none.parquet").height == 0


def _nwp500_rows() -> list[dict[str, str]]:
    """Two polls as nwp500-python's ``monitor`` writes them: model_dump() + naive local timestamp."""
    converted = {  # an older dump: converted values only (degF, booleans, enum names)
        "command": "16777219", "mac_address": "AA:BB:CC:DD:EE:FF", "temperature_type": "FAHRENHEIT",
        "operation_mode": "HEAT_PUMP_MODE", "dhw_operation_setting": "HEAT_PUMP",
        "dhw_temperature": "137.3", "dhw_temperature_setting": "140.0",
        "tank_upper_temperature": "137.5", "tank_lower_temperature": "128.5",
        "current_inst_power": "432.0", "comp_use": "True", "heat_upper_use": "False",
        "heat_lower_use": "False", "dhw_charge_per": "92.0", "error_code": "NO_ERROR",
        "total_energy_capacity": "7280.0", "timestamp": "2026-11-20T04:00:00.123456",
    }
    raw = dict(converted)  # a newer dump also has the *_raw integers: those win
    raw.update({"dhw_temperature_raw": "118", "tank_upper_temperature_raw": "590",
                "timestamp": "2026-11-20T04:00:30.000001"})
    return [converted, raw]


def test_nwp500_monitor_csv_is_rebuilt_into_wire_values(tmp_path: Path) -> None:
    rows = _nwp500_rows()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    path = tmp_path / "monitor.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
        w.writerow({**rows[0], "dhw_temperature": "warm", "timestamp": "2026-11-20T04:01:00"})  # line 4
    data = tmp_path / "data"
    res = import_file(cfg(data, "America/Los_Angeles"), path)
    assert res.imported == 2 and [n for n, _ in res.rejected] == [4]
    assert "dhw_temperature" in res.rejected[0][1]
    st = scan_dataset(data, "status").sort("received_at").collect()
    assert st.get_column("device").to_list() == [MAC, MAC]
    # naive local time (Los Angeles, UTC-8 in November) -> UTC
    assert st.get_column("received_at")[0] == datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)
    a, b = st.row(0, named=True), st.row(1, named=True)
    assert (a["dhwTemperature"], a["tankUpperTemperature"], a["tankLowerTemperature"]) == (117, 586, 536)
    assert (b["dhwTemperature"], b["tankUpperTemperature"]) == (118, 590)  # from the raw columns
    assert (a["operationMode"], a["dhwOperationSetting"], a["compUse"], a["heatUpperUse"]) == (32, 1, 2, 1)
    assert (a["dhwTemperatureSetting"], a["errorCode"], a["totalEnergyCapacity"]) == (120, 0, 728)
    assert import_file(cfg(data, "America/Los_Angeles"), path).imported == 0


def test_csv_without_device_uses_the_only_stored_device(tmp_path: Path) -> None:
    data = _collected(tmp_path)
    row = {k: v for k, v in _nwp500_rows()[0].items() if k != "mac_address"}
    path = tmp_path / "m.csv"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    res = import_file(cfg(data), path)
    assert res.imported == 1 and res.rejected == []
    assert scan_dataset(data, "status").filter(pl.col("source") == "import-nwp500-csv").collect().get_column(
        "device").to_list() == [MAC]
