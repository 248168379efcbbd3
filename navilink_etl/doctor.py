"""``navilink-etl doctor``: the current findings per device (the ``findings`` mart, docs/metrics.md
8) as text, and an exit status for cron or systemd: 0 none (or only advice), 1 a warning, 2 an
error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from . import warehouse
from .config import NaviLinkConfig

SEVERITY_EXIT = {"info": 0, "warning": 1, "error": 2}
_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Diagnosis:
    findings: pl.DataFrame  # the findings mart's rows, worst first per device
    devices: list[str]  # every device with data
    text: str
    exit_code: int


def exit_code(findings: pl.DataFrame) -> int:
    """2 with an error, 1 with a warning, else 0."""
    return max((SEVERITY_EXIT[s] for s in findings.get_column("severity").to_list()), default=0)


def render(findings: pl.DataFrame, devices: list[str]) -> str:
    if not devices:
        return ("No data yet: run `navilink-etl collect` (the embedded simulator without "
                "NAVILINK_EMAIL) or `navilink-etl simulate` first.")
    lines: list[str] = []
    for device in devices:
        rows = findings.filter(pl.col("device") == device).to_dicts()
        lines.append(f"{device}: " + ("no findings" if not rows else f"{len(rows)} finding(s)"))
        for r in rows:
            since = r["since"].strftime("%Y-%m-%d %H:%M UTC") if r["since"] is not None else "?"
            lines.append(f"  [{r['severity'].upper()}] {r['finding']} since {since}")
            lines.append(f"      {r['evidence']}")
            lines.append(f"      what to do: {r['what_to_do']}")
    return "\n".join(lines)


def diagnose(config: NaviLinkConfig, progress: Callable[[str], None] | None = None) -> Diagnosis:
    """Refresh the warehouse, then read the findings of every device."""
    warehouse.refresh(config, progress=progress)
    con = warehouse.connect(config)
    try:
        devices = [r[0] for r in con.sql(
            "select distinct device from int_health_days order by device").fetchall()]
        df = con.sql("select * from findings").pl()
    finally:
        con.close()
    df = df.with_columns(pl.col("severity").replace_strict(_ORDER, return_dtype=pl.Int32)
                         .alias("_rank")).sort(["device", "_rank", "finding"]).drop("_rank")
    return Diagnosis(df, devices, render(df, devices), exit_code(df))
