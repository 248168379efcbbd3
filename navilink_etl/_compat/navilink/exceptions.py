"""The original ``navilink.exceptions`` names, resolved to ``navilink_etl.errors``."""

from navilink_etl.errors import (
    APIError,
    AuthenticationError,
    CommunicationError,
    DeviceError,
    DeviceOfflineError,
    InvalidCredentialsError,
    MQTTError,
    NaviLinkConnectionError,
    NaviLinkError,
    NavilinkError,
    TokenExpiredError,
    ValidationError,
    WebSocketError,
)

__all__ = [
    "APIError", "AuthenticationError", "CommunicationError", "DeviceError", "DeviceOfflineError",
    "InvalidCredentialsError", "MQTTError", "NaviLinkConnectionError", "NaviLinkError", "NavilinkError",
    "TokenExpiredError", "ValidationError", "WebSocketError",
]  # fmt: skip
