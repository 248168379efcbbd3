"""One self-contained HTML page per report: inline CSS, charts as embedded PNGs, no scripts.

Every piece of text that comes from data or the user (device names, table cells, captions) goes
through :func:`html.escape`; the page loads nothing from the network (a CSP forbids it).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from .charts import Tile

_CSS = """
:root { --ink:#1d1d1f; --muted:#5f6368; --line:#e3e3e3; --card:#f4f6f7; --hp:#2a9d8f; --el:#e76f51; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 "DejaVu Sans", "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { font-size: 26px; margin: 0 0 4px; }
header p { margin: 0; color: var(--muted); }
h2 { font-size: 19px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
.intro { color: var(--muted); margin: 4px 0 12px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 12px;
         margin-top: 20px; }
.tile { background: var(--card); border: 1px solid #d5dbdb; border-radius: 10px; padding: 12px 14px; }
.tile .label { color: var(--muted); font-size: 13px; }
.tile .value { font-size: 26px; font-weight: 700; margin: 2px 0; }
.tile .note { color: #777; font-size: 12px; }
figure { margin: 16px 0 24px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: var(--card); }
tr.flag td { color: #b3261e; }
.notes { color: var(--muted); font-size: 13px; }
.findings { margin-top: 20px; border: 1px solid #d5dbdb; border-radius: 10px; padding: 10px 16px; }
.findings h2 { margin: 4px 0 8px; border: none; }
.findings li { margin: 6px 0; }
.findings .sev { font-weight: 700; }
.findings .error .sev { color: #b3261e; } .findings .warning .sev { color: #b8860b; }
.findings .info .sev { color: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
         padding-top: 8px; }
@media print { main { max-width: none; } figure { break-inside: avoid; } }
"""


@dataclass(frozen=True, slots=True)
class Image:
    """A rendered chart: PNG bytes plus its title and one-line caption (both plain text)."""

    png: bytes
    title: str
    caption: str


@dataclass(frozen=True, slots=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[object]]
    flagged: Sequence[bool] = ()  # rows shown as warnings (e.g. days below the coverage threshold)


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    intro: str = ""
    images: Sequence[Image] = ()
    tables: Sequence[Table] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def _img(image: Image) -> str:
    data = base64.b64encode(image.png).decode("ascii")
    # The caption is drawn inside the PNG (it must travel with the PNG and PDF); here it is the alt
    # text, so the page does not print it twice.
    alt = escape(f"{image.title}. {image.caption}", quote=True)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}" title="{alt}"></figure>'



def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in t.headers)
    body = []
    for i, row in enumerate(t.rows):
        cls = ' class="flag"' if i < len(t.flagged) and t.flagged[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass(frozen=True, slots=True)
class Finding:
    """One row of the findings mart, as text (``severity``: error, warning or info)."""

    severity: str
    finding: str
    since: str
    evidence: str
    what_to_do: str


def _findings(findings: Sequence[Finding]) -> str:
    if not findings:
        return ('<section class="findings"><h2>Findings</h2><p class="intro">Nothing needs '
                "attention: no rule of navilink-etl doctor fires for this heater.</p></section>")
    items = "".join(
        f'<li class="{escape(f.severity)}"><span class="sev">{escape(f.severity.upper())}</span> '
        f"{escape(f.finding)} (since {escape(f.since)}): {escape(f.evidence)}. "
        f"<em>{escape(f.what_to_do)}</em></li>" for f in findings)
    return f'<section class="findings"><h2>Findings</h2><ul>{items}</ul></section>'


def render_html(*, title: str, subtitle: str, tiles: Sequence[Tile], sections: Sequence[Section],
                footer: str = "", findings: Sequence[Finding] | None = None) -> str:
    """The whole page as a string; all arguments are plain text and are escaped here.
    ``findings`` (None: no box) go in a box at the top."""
    tiles_html = "".join(
        f'<div class="tile"><div class="label">{escape(t.label)}</div>'
        f'<div class="value">{escape(t.value)}</div><div class="note">{escape(t.note)}</div></div>'
        for t in tiles)
    parts = []
    for s in sections:
        parts.append(f"<section><h2>{escape(s.title)}</h2>")
        if s.intro:
            parts.append(f'<p class="intro">{escape(s.intro)}</p>')
        parts.extend(_img(i) for i in s.images)
        parts.extend(_table(t) for t in s.tables)
        if s.notes:
            parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in s.notes)
                         + "</ul>")
        parts.append("</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
        + ("" if findings is None else _findings(findings))
        +         f'<div class="tiles">{tiles_html}</div>'
        + "".join(parts)
        + f"<footer>{escape(footer)}</footer></main></body></html>\n"
    )
