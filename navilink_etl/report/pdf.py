"""The report as one PDF: a cover page, then one page per chart (matplotlib's PdfPages, no binaries)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import matplotlib as mpl
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from .charts import STYLE


def cover(title: str, subtitle: str, notes: Sequence[str] = ()) -> Figure:
    """A landscape A4-ish cover page: title, period and device, and what the report is built on."""
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(11.0, 7.5))
        fig.text(0.06, 0.80, title, fontsize=22, fontweight="bold")
        fig.text(0.06, 0.74, subtitle, fontsize=13, color="#444444")
        y = 0.64
        for note in notes:
            lines = textwrap.wrap(note, 120)
            fig.text(0.06, y, "• " + "\n   ".join(lines), fontsize=10.5, color="#555555",
                     va="top", linespacing=1.4)
            y -= 0.032 * len(lines) + 0.02
    return fig


def write_pdf(path: Path, figures: Sequence[Figure], *, title: str, subject: str = "",
              created: datetime | None = None) -> Path:
    """Write ``figures`` one per page to ``path`` atomically (a temp file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    meta: dict[str, str | datetime | None] = {"Title": title, "Subject": subject,
                                              "Creator": "navilink-etl"}
    if created is not None:
        meta["CreationDate"] = created
    try:
        with PdfPages(tmp, metadata=meta) as pdf:
            for fig in figures:
                pdf.savefig(fig)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
