"""The HTML report renders in headless Chromium offline: a real screenshot and no console messages.

Needs the Debian package ``chromium`` (CI: ``apt-get update && apt-get install -y chromium``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from navilink_etl.report.build import render_report
from tests import report_frames as rf

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed; CI installs it "
                       "with: apt-get update && apt-get install -y chromium"),
]


def _screenshot(page: Path, shot: Path, profile: Path, height: int = 3000) -> list[str]:
    """Open ``page`` in headless Chromium, write a screenshot, return its console messages."""
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           f"--window-size=1280,{height}", f"--screenshot={shot}", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Chromium logs every console message (errors, CSP violations, uncaught exceptions) this way
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def test_report_renders_offline_without_console_messages(tmp_path: Path) -> None:
    paths = render_report(rf.report_data(), out_dir=tmp_path / "reports", formats=["html"])
    shot = tmp_path / "report.png"
    console = _screenshot(paths[0], shot, tmp_path / "profile")
    assert console == []
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[1] == 1280 and img.shape[0] >= 2000
    # not a blank page: a good share of pixels are not white and the embedded charts are coloured
    rgb = img[..., :3]
    assert (rgb.mean(axis=2) < 0.95).mean() > 0.05
    assert np.ptp(rgb, axis=2).max() > 0.3


def test_the_console_check_catches_a_broken_page(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><meta http-equiv="Content-Security-Policy" '
                    "content=\"default-src 'none'\"><img src=\"http://127.0.0.1:9/x.png\">"
                    "<p>broken</p>", encoding="utf-8")
    console = _screenshot(page, tmp_path / "bad.png", tmp_path / "profile", height=400)
    assert any("Content Security Policy" in line for line in console)
