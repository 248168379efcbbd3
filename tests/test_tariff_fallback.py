"""TOU plans saved under data/tou/: a plan with bad fields is skipped with a warning and its device
is priced at the flat tariff; the warehouse keeps working with NAVILINK_TARIFF=tou."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from navilink_etl import tariff, warehouse
from navilink_etl.config import NaviLinkConfig
from navilink_etl.errors import PayloadError
from tests.conftest import load_capture
from tests.golden.builders import status_rows, write_status

GOOD, BAD = "aabbccddeeff", "001122334455"
PLAN = load_capture("rest_device_tou_response.json")


def broken(path: list[Any], value: Any) -> dict[str, Any]:
    plan = copy.deepcopy(PLAN)
    node: Any = plan["data"]["data"]["touInfo"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return plan


BROKEN = {
    "hour_99": broken(["schedule", 0, "interval", 0, "endHour"], 99),
    "price_text": broken(["schedule", 0, "interval", 0, "priceMin"], "cheap"),
    "decimal_huge": broken(["schedule", 0, "interval", 0, "decimalPoint"], 400),
    "season_null": broken(["schedule", 0, "season"], None),
    "interval_not_list": broken(["schedule", 0, "interval"], 7),
    "week_float": broken(["schedule", 0, "interval", 0, "week"], 124.5),
    "ends_before_start": broken(["schedule", 0, "interval", 0, "startHour"], 20),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_tou_rows_names_the_bad_field(name: str) -> None:
    with pytest.raises(PayloadError, match="TOU plan"):
        tariff.tou_rows(BROKEN[name])


def test_a_bad_saved_plan_falls_back_to_flat_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tou = tmp_path / "tou"
    tou.mkdir()
    (tou / f"{GOOD}.json").write_text(json.dumps(PLAN))
    (tou / f"{BAD}.json").write_text(json.dumps(BROKEN["hour_99"]))
    (tou / "default.json").write_bytes(b"{not json")
    (tou / "..evil.json").write_text(json.dumps(PLAN))
    with caplog.at_level(logging.WARNING, logger="navilink_etl.tariff"):
        rows = tariff.load_tou_dir(tmp_path, 0.17)
    assert {r["device"] for r in rows} == {GOOD, BAD, None}
    assert [r for r in rows if r["device"] == BAD] == tariff.flat_rows(BAD, 0.17)
    assert [r for r in rows if r["device"] is None] == tariff.flat_rows(None, 0.17)
    assert len([r for r in rows if r["device"] == GOOD]) == 12
    text = caplog.text
    assert f"{BAD}.json" in text and "endHour=99" in text and "flat tariff" in text
    assert "default.json" in text and "..evil.json" in text


def test_views_and_queries_work_with_a_broken_plan(tmp_path: Path) -> None:
    at = datetime(2026, 7, 6, 7, tzinfo=UTC)
    samples = [(i * 300, {"power": 50}) for i in range(12 * 24 + 1)]
    write_status(tmp_path, status_rows(GOOD, samples, at) + status_rows(BAD, samples, at))
    (tmp_path / "tou").mkdir()
    (tmp_path / "tou" / f"{GOOD}.json").write_text(json.dumps(PLAN))
    (tmp_path / "tou" / f"{BAD}.json").write_text(json.dumps(BROKEN["price_text"]))
    cfg = NaviLinkConfig(data_dir=tmp_path, polling_interval=300, tariff="tou", timezone="America/Los_Angeles",
                         price_per_kwh=0.21)
    con = warehouse.connect(cfg)
    prices = dict(con.sql("select device, list(distinct price_per_kwh order by price_per_kwh) "
                          "from int_energy_slots group by device").fetchall())
    daily = con.sql("select device, sum(cost) from efficiency_daily group by device").fetchall()
    con.close()
    assert prices[BAD] == [0.21]  # the broken plan's device: flat
    assert 0.50678 in prices[GOOD] and 0.21 not in prices[GOOD]  # the good plan still applies
    assert all(cost is not None and cost > 0 for _, cost in daily)
