"""report.html / pdf / render_report: self-contained output, escaped text, every format written."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import polars as pl
import pytest

from navilink_etl.errors import ConfigurationError
from navilink_etl.report import summary
from navilink_etl.report.build import render_report
from navilink_etl.report.charts import Tile
from navilink_etl.report.html import Image, Section, Table, render_html
from navilink_etl.report.units import Units
from tests import report_frames as rf

EVIL = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_render_html_escapes_every_piece_of_text() -> None:
    page = render_html(
        title=f"Report {EVIL}", subtitle=EVIL, tiles=[Tile(EVIL, EVIL, EVIL)],
        sections=[Section(EVIL, EVIL, [Image(PNG_MAGIC, EVIL, EVIL)],
                          [Table([EVIL], [[EVIL]], [True])], [EVIL])],
        footer=EVIL)
    assert "<script" not in page.lower()
    assert "<img src=x" not in page
    assert "onerror=alert(1)>" not in page
    assert page.count("&lt;script&gt;") >= 9  # title x2, subtitle, tile x3, h2, intro, caption...
    assert 'alt="' in page and "&quot;x&quot;" in page  # attribute values escaped too


def test_render_html_is_self_contained() -> None:
    page = render_html(title="t", subtitle="s", tiles=[], footer="f",
                       sections=[Section("Charts", images=[Image(PNG_MAGIC + b"rest", "T", "C")])])
    srcs = re.findall(r'src="([^"]+)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[0].split(",", 1)[1]).startswith(PNG_MAGIC)
    assert not re.search(r"(?:href|src)=\"(?:https?:)?//", page)
    assert "default-src 'none'" in page  # the page may not load anything from anywhere


def test_render_report_writes_html_pdf_and_pngs(tmp_path: Path) -> None:
    data = rf.report_data()
    seen: list[str] = []
    paths = render_report(data, out_dir=tmp_path, units="F", progress=seen.append)
    html = [p for p in paths if p.suffix == ".html"]
    pdf = [p for p in paths if p.suffix == ".pdf"]
    pngs = sorted(p for p in paths if p.suffix == ".png")
    assert len(html) == 1 and len(pdf) == 1 and len(pngs) == 10
    assert html[0].name == "navilink_aabbccddeeff_2026-03-01_2026-03-04.html"
    assert [p.name for p in pngs][:2] == ["01_headline.png", "02_timeline.png"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in pngs)
    page = html[0].read_text(encoding="utf-8")
    # every chart except the headline tiles (shown as HTML cards) is embedded, and the cards are there
    assert page.count("data:image/png;base64,") == 9
    for label in ("Electricity per day", "Period COP (SPF)", "Data coverage", "Saved vs resistance"):
        assert label in page
    assert "3.00" in page  # SPF = 4 x 4500 / (4 x 1500)
    assert 'class="flag"' in page  # the 90 % coverage day is flagged in the table
    head = pdf[0].read_bytes()
    assert head.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", head)) == 11  # cover + 10 charts
    assert any("rendering chart 10/10" in m for m in seen) and any("PDF" in m for m in seen)
    assert not list(tmp_path.glob(".*.tmp"))


def test_render_report_only_requested_formats_and_escaped_device(tmp_path: Path) -> None:
    data = rf.report_data(device=f"dev{EVIL}")
    paths = render_report(data, out_dir=tmp_path, formats=["html"], units="C")
    assert len(paths) == 1 and paths[0].suffix == ".html"
    assert "<" not in paths[0].name and "/" not in paths[0].name.removesuffix(".html")
    page = paths[0].read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert "temperatures in °C" in page
    assert not list(tmp_path.glob("*/*.png"))
    with pytest.raises(ConfigurationError, match="unknown report format"):
        render_report(data, out_dir=tmp_path, formats=["docx"])


def test_summary_period_cop_is_ratio_of_sums() -> None:
    data = rf.report_data()
    ef = data.efficiency.with_columns(
        heat_out_wh=pl.Series([3000.0, 9000.0, 0.0, 0.0]),
        total_wh=pl.Series([1000.0, 2000.0, 0.0, 0.0]))
    s = summary.summarize(data.__class__(**{**data.__dict__, "efficiency": ef}))
    assert s.period_cop == pytest.approx(12000 / 3000)  # not the mean of daily COPs (3.0, 4.5)
    assert s.days_low_coverage == 1 and s.hp_share == pytest.approx(
        sum(data.energy_daily["compressor_wh"]) / sum(data.energy_daily["compressor_wh"]
                                                      + data.energy_daily["element_wh"]))
    tiles = {t.label: t for t in summary.tiles(s, Units.of("C"))}
    assert tiles["Hot water delivered"].value.endswith(" L")
    assert tiles["Period COP (SPF)"].value == "4.00"
