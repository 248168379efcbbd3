"""The original ``navilink.exceptions`` names, resolved to ``navilink_etl.errors``."""

from __future__ import annotations

from typing import Any

from navilink_etl import errors

__all__ = sorted(n for n, v in vars(errors).items()
                 if isinstance(v, type) and issubclass(v, Exception) and v.__module__ == errors.__name__)


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(errors, name)
    raise AttributeError(f"module 'navilink.exceptions' has no attribute {name!r}")
