"""``navilink``: the original NaviLink library's import name, a thin alias of ``navilink_etl``.

``from navilink import NaviLinkClient, NaviLinkConfig`` gives this package's classes; the client
loads lazily, as in ``navilink_etl``.
"""

from __future__ import annotations

from typing import Any

from navilink_etl import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    DeviceStatus,
    DhwMode,
    InvalidCredentialsError,
    NaviLinkConfig,
    NaviLinkConnectionError,
    NaviLinkError,
    ValidationError,
)
from navilink_etl.errors import (
    CommunicationError,
    DeviceError,
    DeviceOfflineError,
    MQTTError,
    TokenExpiredError,
    WebSocketError,
)

__all__ = [
    "APIError", "AuthenticationError", "CommunicationError", "ConfigurationError", "DeviceError",
    "DeviceOfflineError", "DeviceStatus", "DhwMode", "InvalidCredentialsError", "MQTTError",
    "NaviLinkClient", "NaviLinkConfig", "NaviLinkConnectionError", "NaviLinkDevice", "NaviLinkError",
    "TokenExpiredError", "ValidationError", "WebSocketError",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in ("NaviLinkClient", "NaviLinkDevice"):
        import navilink_etl

        return getattr(navilink_etl, name)
    raise AttributeError(f"module 'navilink' has no attribute {name!r}")
