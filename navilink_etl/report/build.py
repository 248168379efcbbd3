"""Build the efficiency report: warehouse marts -> charts -> HTML, PDF and PNG files per device.

``build_report`` is the library call behind ``navilink-etl report``; ``render_report`` does the
drawing and writing for data already loaded (tests and notebooks use it directly).
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..errors import ConfigurationError, StoreError
from . import charts, summary
from . import whatif as whatif_section
from .data import TIMELINE_DAYS, ReportData, default_period, list_devices, load
from .html import Finding, Image, Section, render_html
from .pdf import cover, write_pdf
from .units import Units

FORMATS = ("html", "pdf", "png")
PNG_DPI = 110
Progress = Callable[[str], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Chart:
    slug: str
    section: str
    figure: Figure


def _stem(device: str, start: date, end: date) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", device) or "device"
    return f"navilink_{safe}_{start.isoformat()}_{end.isoformat()}"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, facecolor="white")
    return buf.getvalue()


def _keep_layout(fig: Figure) -> None:
    """Keep the positions the constrained layout just gave ``fig``: later outputs (the PDF) draw
    it as it is instead of laying it out again (half of a figure's drawing time)."""
    fig.set_layout_engine("none")


def _write_bytes(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def make_charts(data: ReportData, s: summary.Summary, units: Units) -> list[Chart]:
    """Every chart of the report, in reading order."""
    tz = data.tz
    return [
        Chart("headline", "Headline", charts.headline(summary.tiles(s, units))),
        Chart("timeline", "Tank over time", charts.timeline(data.status, data.cycles, data.draws,
                                                            units=units, tz=tz,
                                                            last_days=TIMELINE_DAYS)),
        Chart("hot_water", "Hot water available",
              charts.hot_water(data.hot_water, data.runouts, units=units, tz=tz)),
        Chart("daily_energy", "Electricity", charts.daily_energy(data.energy_daily)),
        Chart("element_causes", "Why the element ran", charts.element_causes(data.element_use, tz=tz)),
        Chart("cycles", "Heating cycles", charts.cycles(data.cycles, tz=tz)),
        Chart("recovery", "Heating cycles", charts.recovery(data.recovery, units=units)),
        Chart("cop", "Efficiency", charts.cop_vs_ambient(data.cycles, units=units,
                                                           period_cop=s.period_cop)),
        Chart("standby_draws", "Standby loss and draws",
              charts.standby_and_draws(data.standby, data.draws, units=units, tz=tz)),
        Chart("coverage", "Data quality", charts.coverage(data.energy_daily)),
    ]


_METHOD_NOTES = (
    "Electricity is integrated from the status samples by what was running; a sample's value holds "
    "until the next one, never across a gap longer than the gap cap (such time counts as a gap).",
    "Period COP (SPF) = all heat delivered / all electricity, standby included; never a mean of "
    "cycle COPs. The device has no flow meter: heat is measured only over cycles without a draw.",
    "EMS is the device's own daily history; 'ours - EMS' shows how far the two disagree per day.",
    "Savings compare the cost with an electric-resistance heater delivering the same heat.",
    "The tank timeline shows at most the last 31 days; the daily charts cover the whole period.",
)

_INTROS = {
    "Tank over time": "What the tank did: both sensors, the energy stored above the device's "
                      "reference temperature, and the device's own charge estimate.",
    "Hot water available": "How much hot water the tank held for the tap, and the draws that "
                           "ran it out (docs/metrics.md 7).",
    "Electricity": "Electricity we measured from the status samples, split by what was running, "
                   "against the device's own daily history (EMS).",
    "Why the element ran": "Each run of an element with its cause, read from the DHW mode, the "
                           "room temperature, setpoint changes, the anti-Legionella cycle and "
                           "freeze protection. 'Avoidable' is the element's electricity minus what "
                           "the heat pump would have used for the same heat, where a setting "
                           "could have avoided it.",
    "Heating cycles": "A heating cycle is one run of the heat pump and/or an element.",
    "Efficiency": "COP is heat delivered per unit of electricity. Only cycles without a draw can "
                  "be measured; the others are modelled from them.",
    "Standby loss and draws": "Heat lost through the tank wall while idle, and the hot water used.",
    "Data quality": "Every number above is only as good as the samples behind it.",
}


def _sections(data: ReportData, s: summary.Summary, images: dict[str, Image],
              chart_list: Sequence[Chart], whatif: Any = None) -> list[Section]:
    order: list[str] = []
    for c in chart_list:
        if c.section != "Headline" and c.section not in order:
            order.append(c.section)
    out = []
    for name in order:
        imgs = [images[c.slug] for c in chart_list if c.section == name and c.slug in images]
        tables = {"Data quality": [summary.coverage_table(data)],
                  "Why the element ran": [summary.element_cause_table(data)]}.get(name, [])
        if name == whatif_section.SECTION and whatif is not None:
            out.append(Section(name, whatif_section.INTRO, imgs, [whatif_section.table(whatif)],
                               whatif_section.notes(whatif)))
            continue
        out.append(Section(name, _INTROS.get(name, ""), imgs, tables))
    out.append(Section("About these numbers", notes=[*s.notes, *_METHOD_NOTES]))
    return out


def findings_of(data: ReportData) -> list[Finding]:
    """The device's current findings (the findings mart) as text for the box at the top."""
    if data.findings.is_empty():
        return []
    return [Finding(r["severity"], r["finding"],
                    r["since"].strftime("%Y-%m-%d") if r["since"] is not None else "?",
                    r["evidence"], r["what_to_do"]) for r in data.findings.iter_rows(named=True)]


def render_report(data: ReportData, *, out_dir: Path, units: str | Units = "F",
                  formats: Iterable[str] = FORMATS,
                  progress: Progress | None = None, source: str = "", whatif: Any = None) -> list[Path]:
    """Draw every chart for ``data`` and write the requested formats under ``out_dir``
    (``whatif``: a ``twin.WhatIfResult`` for the "What would change" section, if any)."""
    u = Units.of(units)
    fmts = tuple(dict.fromkeys(formats))
    if bad := [f for f in fmts if f not in FORMATS]:
        raise ConfigurationError(f"unknown report format {bad[0]!r}; use html, pdf or png")
    say = progress or (lambda _msg: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = _stem(data.device, data.start, data.end)
    title = f"Water heater efficiency report: {data.device}"
    subtitle = (f"{data.start:%d %b %Y} to {data.end:%d %b %Y} ({data.days} days, local time "
                f"{data.tz}); temperatures in {u.temp}")
    s = summary.summarize(data)
    say(f"{data.device}: drawing charts")
    chart_list = make_charts(data, s, u)
    if whatif is not None:
        chart_list.append(Chart("whatif", whatif_section.SECTION, whatif_section.chart(whatif)))
    paths: list[Path] = []
    images: dict[str, Image] = {}
    if "html" in fmts or "png" in fmts:
        png_dir = out_dir / stem
        if "png" in fmts:
            png_dir.mkdir(exist_ok=True)
        for i, c in enumerate(chart_list, 1):
            say(f"{data.device}: rendering chart {i}/{len(chart_list)} ({c.slug})")
            png = _png(c.figure)
            _keep_layout(c.figure)
            images[c.slug] = Image(png, charts.title_of(c.figure), charts.caption_of(c.figure))
            if "png" in fmts:
                paths.append(_write_bytes(png_dir / f"{i:02d}_{c.slug}.png", png))
    footer = (f"Generated by navilink-etl at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
              + (f" from {source}" if source else "") + ". Every figure is read from the "
              "warehouse views; nothing here was fetched from the cloud.")
    if "html" in fmts:
        say(f"{data.device}: writing HTML")
        page = render_html(title=title, subtitle=subtitle, tiles=summary.tiles(s, u),
                           sections=_sections(data, s, images, chart_list, whatif), footer=footer,
                           findings=findings_of(data))
        paths.append(_write_bytes(out_dir / f"{stem}.html", page.encode("utf-8")))
    if "pdf" in fmts:
        say(f"{data.device}: writing PDF")
        found = [f"Finding ({f.severity}): {f.finding} since {f.since}: {f.evidence}."
                 for f in findings_of(data)]
        pages = [cover(title, subtitle, [*found, *s.notes, *_METHOD_NOTES, footer])]
        pages += [c.figure for c in chart_list]
        paths.append(write_pdf(out_dir / f"{stem}.pdf", pages, title=title, subject=subtitle))
    return paths


def build_report(config: Any, *, device: str | None = None, start: date | None = None,
                 end: date | None = None, out_dir: Path = Path("reports"), units: str = "F",
                 formats: Sequence[str] = FORMATS, progress: Progress | None = None) -> list[Path]:
    """Write one report per device (all devices by default) for ``start``..``end`` local days.

    Default period: the last 30 days that have data. Returns the files written.
    """
    from .. import warehouse

    u = Units.of(units)
    if bad := [f for f in formats if f not in FORMATS]:
        raise ConfigurationError(f"unknown report format {bad[0]!r}; use html, pdf or png")
    if start is not None and end is not None and start > end:
        raise ConfigurationError(f"--from {start} is after --to {end}")
    if device is not None:  # accept AA:BB:CC:DD:EE:FF and upper case; stored MACs are bare lower hex
        device = re.sub(r"[:\-]", "", device.strip()).lower()
    source = str(warehouse.warehouse_path_of(config))
    say = progress or (lambda _msg: None)
    say("refreshing the warehouse")
    try:
        warehouse.refresh(config, progress=say)
    except (StoreError, OSError) as exc:  # e.g. a read-only data folder: report what is stored
        log.warning("could not refresh %s (%s); reporting the stored marts", source, exc)
    paths: list[Path] = []
    con = warehouse.connect(config, read_only=True)
    try:
        devices = list_devices(con)
        if not devices:
            raise StoreError(f"no status data under {config.data_dir}: run `navilink-etl collect` "
                             "or `navilink-etl simulate` first", data_dir=str(config.data_dir))
        if device is not None:
            if device not in devices:
                raise ConfigurationError(f"no data for device {device!r}; devices with data: "
                                         + ", ".join(devices))
            devices = [device]
        for n, dev in enumerate(devices, 1):
            period = default_period(con, dev, start, end)
            if period is None:
                say(f"{dev}: no daily data, skipped")
                continue
            say(f"{dev} ({n}/{len(devices)}): loading {period[0]} to {period[1]}")
            data = load(con, dev, period[0], period[1], config.timezone)
            if data.energy_daily.is_empty():
                say(f"{dev}: warning: no data from {period[0]} to {period[1]}")
            wi = whatif_section.answer(config, con, dev, period[0], period[1], progress=say) \
                if not data.energy_daily.is_empty() else None
            paths += render_report(data, out_dir=out_dir, units=u, formats=formats,
                                   progress=say, source=source, whatif=wi)
    finally:
        con.close()
    say(f"done: {len(paths)} files in {out_dir}")
    return paths
