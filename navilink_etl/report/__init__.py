"""Efficiency reports built on the warehouse views: charts, HTML, PDF and PNG."""

from __future__ import annotations

from typing import Any

__all__ = ["build_report"]


def build_report(*args: Any, **kwargs: Any) -> Any:
    """See :func:`navilink_etl.report.build.build_report` (imported lazily: matplotlib is heavy)."""
    from .build import build_report as _build

    return _build(*args, **kwargs)
