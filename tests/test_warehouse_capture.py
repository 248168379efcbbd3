"""Replay of real captured status messages (tests/fixtures/navilink-capture) through the parser
and the warehouse: mode runs, the element-on interval and power attribution under the lag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from navilink_etl import warehouse
from navilink_etl.collect.store import status_file_schema
from navilink_etl.config import NaviLinkConfig
from navilink_etl.status import parse_status, status_row
from tests.conftest import load_capture

T0 = datetime(2025, 9, 26, 20, 40, tzinfo=UTC)
# In capture order of the plant's story, 30 s apart: heat pump running (432 W), the push when the
# upper element joined the running compressor (power still 433 W: it lags one message), the
# control echo with only the element on (5193 W) during a draw, then standby (1 W).
SEQUENCE = (
    "status_response_heatpump_running.json",
    "status_push_heat_source_change_67108892.json",
    "status_ack_set_high_demand_electric_element_running.json",
    "status_response_standby_idle.json",
)


@pytest.fixture
def con(tmp_path: Path):  # type: ignore[no-untyped-def]
    rows = []
    for i, name in enumerate(SEQUENCE):
        at = T0 + timedelta(seconds=30 * i)
        st = parse_status(load_capture(name), received_at=at)
        rows.append(status_row(st, received_at=at, source="capture") | {"date": at.date()})
    folder = tmp_path / "status" / f"device={rows[0]['device']}" / f"date={T0.date()}"
    folder.mkdir(parents=True)
    schema = status_file_schema()
    pl.DataFrame(rows, schema=schema, orient="row").write_parquet(folder / "part-0.parquet")
    c = warehouse.connect(NaviLinkConfig(data_dir=tmp_path, polling_interval=30, timezone="UTC"))
    yield c
    c.close()


def test_replay_mode_runs(con) -> None:  # type: ignore[no-untyped-def]
    runs = con.sql("select mode_kind, mode, mode_name, duration_s from mode_cycles "
                   "order by mode_kind, run_start").fetchall()
    assert runs == [
        ("dhw_mode", 1, "heat_pump", 30.0), ("dhw_mode", 3, "energy_saver", 30.0),
        ("dhw_mode", 4, "high_demand", 30.0),
        ("operation_mode", 32, "heat_pump", 30.0), ("operation_mode", 96, "heat_pump_and_element", 30.0),
        ("operation_mode", 64, "element", 30.0),
    ]


def test_replay_power_follows_the_relays_one_message_late(con) -> None:  # type: ignore[no-untyped-def]
    got = con.sql("""
        select reported_power_w, aligned_power_w, power_source, compressor_on, element_on,
            round(compressor_w, 6) as compressor_w, round(element_w, 6) as element_w
        from int_intervals order by interval_start""").fetchall()
    assert got == [
        # compressor only: the next message's 433 W is this interval's power
        (432.0, 433.0, "next", True, False, 432.0, 0.0),
        # element joined: the push still reports 433 W; the interval takes 5193 W from the echo,
        # split as the compressor's last compressor-only draw (432 W) and the element (the rest)
        (433.0, 5193.0, "next", True, True, 432.0, 4760.0),
        # element only, next reading is standby (1 W, disagrees with the relay): its own 5193 W
        (5193.0, 5193.0, "own", False, True, 0.0, 5192.0),
    ]


def test_replay_element_interval_and_cycle(con) -> None:  # type: ignore[no-untyped-def]
    cycle = con.sql("select * from heating_cycles").pl().to_dicts()
    assert len(cycle) == 1
    c = cycle[0]
    assert c["cycle_start"] == T0 and c["cycle_end"] == T0 + timedelta(seconds=90)
    assert c["source_mix"] == "hybrid" and c["draw_overlap"] and c["method"] == "modelled"
    assert c["element_s"] == 60.0 and c["compressor_s"] == 60.0
    assert c["element_wh"] == pytest.approx((4760 + 5192) * 30 / 3600)
    assert c["compressor_wh"] == pytest.approx(432 * 60 / 3600)
    day = con.sql("select compressor_wh + element_wh + standby_wh - total_wh, coverage "
                  "from energy_daily").fetchall()
    assert day[0][0] == pytest.approx(0.0, abs=1e-9) and 0 < day[0][1] < 0.01
