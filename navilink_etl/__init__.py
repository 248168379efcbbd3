"""navilink-etl: collect, warehouse and report on Navien NWP500 water heaters via NaviLink.

The cloud client classes load lazily, so importing a light submodule does not pull in awscrt.
The original NaviLink library's names work here and under the alias ``navilink``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import NaviLinkConfig
from .errors import (
    APIError,
    AuthenticationError,
    CommunicationError,
    ConfigurationError,
    DeviceError,
    DeviceOfflineError,
    InvalidCredentialsError,
    MQTTError,
    NaviLinkConnectionError,
    NaviLinkError,
    PayloadError,
    RequestTimeoutError,
    StoreError,
    TokenExpiredError,
    ValidationError,
    WebSocketError,
)
from .protocol import DhwMode
from .status import DeviceStatus, EnergyDay, Feature

if TYPE_CHECKING:
    from .cloud.client import NaviLinkClient
    from .cloud.device import NaviLinkDevice

__all__ = [
    "APIError", "AuthenticationError", "CommunicationError", "ConfigurationError", "DeviceError",
    "DeviceOfflineError", "DeviceStatus", "DhwMode", "EnergyDay", "Feature", "InvalidCredentialsError",
    "MQTTError", "NaviLinkClient", "NaviLinkConfig", "NaviLinkConnectionError", "NaviLinkDevice",
    "NaviLinkError", "PayloadError", "RequestTimeoutError", "StoreError", "TokenExpiredError",
    "ValidationError", "WebSocketError",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name == "NaviLinkClient":
        from .cloud.client import NaviLinkClient

        return NaviLinkClient
    if name == "NaviLinkDevice":
        from .cloud.device import NaviLinkDevice

        return NaviLinkDevice
    raise AttributeError(f"module 'navilink_etl' has no attribute {name!r}")
