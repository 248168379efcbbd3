"""Shared fixtures: the captured payloads and an isolated environment for settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .s3_helpers import moto_s3, s3_env  # noqa: F401  (moto's S3 server on 127.0.0.1, session-wide)

CAPTURE_DIR = Path(__file__).parent / "fixtures" / "navilink-capture"


def load_capture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURE_DIR / name).read_text())
    return data


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's NAVILINK_* variables or .env; DuckDB gets a writable home."""
    import os

    for key in list(os.environ):
        if key.startswith("NAVILINK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NAVILINK_TIMEZONE", "America/Los_Angeles")
    monkeypatch.setenv("HOME", os.environ.get("HOME") or str(tmp_path))
