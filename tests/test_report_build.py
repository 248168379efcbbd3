"""build_report and `navilink-etl report` on simulated data: real Parquet, real DuckDB marts."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from navilink_etl import warehouse
from navilink_etl.cli import app
from navilink_etl.config import load_config
from navilink_etl.errors import ConfigurationError, StoreError
from navilink_etl.report import summary
from navilink_etl.report.build import build_report
from navilink_etl.report.data import load_report_data
from tests import report_frames as rf


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rf.simulated(tmp_path_factory.mktemp("sim"), days=2, devices=2)


def _config(sim_dir: Path) -> object:
    return load_config(data_dir=sim_dir, timezone="America/Los_Angeles")


def test_default_report_covers_every_device_and_its_data(sim_dir: Path, tmp_path: Path) -> None:
    config = _config(sim_dir)
    days = warehouse.query(config, "select device, min(day) as first, max(day) as last "
                                   "from energy_daily where samples > 0 group by device order by 1")
    assert days.height == 2
    messages: list[str] = []
    paths = build_report(config, out_dir=tmp_path / "reports", progress=messages.append)
    assert len(paths) == 2 * 13  # html, pdf and 11 charts per device
    for dev, first, last in days.iter_rows():
        stem = f"navilink_{dev}_{first}_{last}"  # under 30 days of data: the whole of it
        names = {p.name for p in paths}
        assert {f"{stem}.html", f"{stem}.pdf", "01_headline.png"} <= names
        assert len(list((tmp_path / "reports" / stem).glob("*.png"))) == 11
        page = (tmp_path / "reports" / f"{stem}.html").read_text(encoding="utf-8")
        assert dev in page and "°F" in page and page.count("data:image/png;base64,") == 10
        assert "What would change" in page and "heat pump only" in page and "backcast" in page
        assert any(m.startswith(f"{dev} (") and "loading" in m for m in messages)
    assert messages[0].startswith("refreshing the warehouse") and messages[-1].startswith("done: 26 files")


def test_headline_numbers_are_the_views_summed(sim_dir: Path) -> None:
    config = _config(sim_dir)
    data = load_report_data(config)
    s = summary.summarize(data)
    monthly = warehouse.query(config, "select * from efficiency_monthly").filter(
        pl.col("device") == data.device)
    # the report period spans all the data here, so its sums must equal the monthly view's
    assert s.electricity_wh == pytest.approx(monthly["total_wh"].sum(), rel=1e-9)
    assert s.period_cop == pytest.approx(monthly["heat_out_wh"].sum() / monthly["total_wh"].sum(),
                                         rel=1e-9)
    assert s.cost == pytest.approx(monthly["cost"].sum(), rel=1e-9)
    assert s.savings == pytest.approx(monthly["savings"].sum(), rel=1e-9)
    draws = warehouse.query(config, "select device, count(*) as n from draws group by 1")
    assert s.draws == draws.filter(pl.col("device") == data.device)["n"][0]
    assert 2.0 < s.period_cop < 4.5  # a heat-pump water heater, not a resistance one


def test_report_data_are_the_marts_rows_of_the_device(sim_dir: Path) -> None:
    config = _config(sim_dir)
    devices = warehouse.query(config, "select distinct device from energy_daily order by 1")
    for dev in devices["device"]:  # the second must not see the first one's rows
        data = load_report_data(config, device=dev)
        rows = warehouse.query(config, "select * from efficiency_daily where device = ? and day "
                                       "between ? and ? order by day", [dev, data.start, data.end])
        assert rows.height > 0
        assert_frame_equal(data.efficiency, rows)
        assert data.status.height > 1000  # the raw samples' timeline, through connect()


def test_cli_report_with_every_option(sim_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAVILINK_DATA_DIR", str(sim_dir))
    config = _config(sim_dir)
    days = warehouse.query(config, "select device, max(day) as last from energy_daily "
                                   "group by 1 order by 1")
    dev, last = days.row(1)
    first = last - timedelta(days=1)
    out = tmp_path / "out"
    mac = ":".join(dev[i:i + 2] for i in range(0, 12, 2)).upper()  # as printed on the unit
    result = CliRunner().invoke(app, ["report", "--device", mac, "--from", str(first), "--to",
                                      str(last), "--out", str(out), "--units", "C",
                                      "--format", "html", "--format", "png"])
    assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    stem = f"navilink_{dev}_{first}_{last}"
    assert f"{stem}.html" in files and not any(f.endswith(".pdf") for f in files)
    assert len([f for f in files if f.endswith(".png")]) == 11
    page = (out / f"{stem}.html").read_text(encoding="utf-8")
    assert "temperatures in °C" in page and "2 days" in page
    assert re.search(r"Coverage.*</th>", page)


def test_unknown_device_and_bad_period_are_configuration_errors(sim_dir: Path, tmp_path: Path) -> None:
    config = _config(sim_dir)
    with pytest.raises(ConfigurationError, match="no data for device 'ffffffffffff'; devices"):
        build_report(config, device="ffffffffffff", out_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="is after"):
        build_report(config, start=date(2026, 1, 2), end=date(2026, 1, 1), out_dir=tmp_path)


def test_empty_data_folder_says_what_to_do(tmp_path: Path) -> None:
    config = load_config(data_dir=tmp_path / "data")
    with pytest.raises(StoreError, match="navilink-etl simulate"):
        build_report(config, out_dir=tmp_path / "reports")


def test_timeline_samples_are_the_last_days_of_stg_status(sim_dir: Path) -> None:
    from navilink_etl.report import charts
    from navilink_etl.report import data as report_data

    config = _config(sim_dir)
    con = warehouse.connect(config, read_only=True)
    try:
        dev = report_data.list_devices(con)[0]
        first, last = report_data.data_days(con, dev)  # type: ignore[misc]
        lo, hi = report_data.utc_bounds(first, last, "America/Los_Angeles")
        full = con.sql("select received_at, tank_upper_c, tank_lower_c, stored_wh, dhw_charge_pct "
                       "from stg_status where device = ? and received_at >= ? and received_at < ? "
                       "order by received_at", params=[dev, lo, hi]).pl()
        part = report_data._timeline_samples(con, dev, lo, hi, days=1)
    finally:
        con.close()
    cut = full["received_at"].max() - timedelta(days=1)  # type: ignore[operator]
    before = full.filter(pl.col("received_at") < cut)["received_at"].max()
    assert before is not None and part.height < full.height
    # every sample from a sample before the timeline's cut on: what the timeline draws, and more
    assert part["received_at"].min() <= before  # type: ignore[operator]
    assert_frame_equal(part, full.filter(pl.col("received_at") >= part["received_at"].min()))
    for a, b in ((part, full), (part.head(0), full.head(0))):
        fa, fb = charts.timeline(a, last_days=1), charts.timeline(b, last_days=1)
        assert charts.title_of(fa) == charts.title_of(fb)
        la = [ln.get_xydata() for ax in fa.axes for ln in ax.get_lines()]
        lb = [ln.get_xydata() for ax in fb.axes for ln in ax.get_lines()]
        assert len(la) == len(lb)
        for xa, xb in zip(la, lb, strict=True):
            np.testing.assert_array_equal(xa, xb)
