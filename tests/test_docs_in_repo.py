"""The repository is self-contained: nothing in it points at documents outside it, and every
``docs/<name>.md`` cited from code, SQL or docs exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Outside references the project once had: a sibling folder and two reference files by name.
OUTSIDE = re.compile(r"\.\./shared|\bshared/|PROTOCOL\.md|ANALYTICS\.md|STYLE\.md|STACK-NOTES\.md")
SELF = Path(__file__).name


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    files = [ROOT / line for line in out.stdout.splitlines()]
    return [f for f in files if f.is_file() and not f.name.endswith((".parquet", ".png", ".pdf"))]


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = []
    for f in _tracked():
        if f.name == SELF or f.parts[-2:-1] == (".ci",):
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{f.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1)
                      if OUTSIDE.search(line)]
    assert offenders == []


def test_every_cited_doc_exists() -> None:
    cited = set()
    for f in _tracked():
        if f.suffix in (".py", ".sql", ".md", ".ipynb"):
            cited |= set(re.findall(r"docs/([a-z_-]+\.md)", f.read_text(encoding="utf-8", errors="replace")))
    assert cited, "the code cites its docs"
    missing = sorted(c for c in cited if not (ROOT / "docs" / c).is_file())
    assert missing == []
