"""``navilink``: the original NaviLink library's import name, a thin alias of ``navilink_etl``.

``from navilink import NaviLinkClient, NaviLinkConfig`` gives this package's classes; every name
is looked up in ``navilink_etl`` (its one list, ``__all__``), so the client still loads lazily.
"""

from __future__ import annotations

from typing import Any

import navilink_etl

__all__ = list(navilink_etl.__all__)


def __getattr__(name: str) -> Any:
    try:
        return getattr(navilink_etl, name)
    except AttributeError:
        raise AttributeError(f"module 'navilink' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
