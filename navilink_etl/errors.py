"""One exception tree for the whole package; messages say what happened and what to do.

    NaviLinkError
    ├── ConfigurationError        a setting is missing or invalid (names the variable and the fix)
    ├── AuthenticationError       sign-in or token refresh failed for a transient/unknown reason
    │   └── InvalidCredentialsError   the cloud rejected the e-mail or password: never retried
    ├── APIError                  a REST call returned an error envelope or HTTP error
    ├── NaviLinkConnectionError   the MQTT connection could not be made or was lost
    ├── DeviceOfflineError        the device did not answer (REST connected=1, or no reply)
    │   └── RequestTimeoutError   one request got no reply within its timeout
    ├── ValidationError           a control value is out of the device's range
    ├── PayloadError              a message from the wire could not be parsed
    └── StoreError                the data directory cannot be written or read
        └── DiskFullError         ...because its disk or quota is full (nothing spooled is lost)

The original NaviLink library's names resolve here too (bottom of this module): ``DeviceError``,
``CommunicationError`` (the base), ``TokenExpiredError``, ``MQTTError``, ``WebSocketError``.

No message or attribute ever holds a password, token or AWS key.
"""

from __future__ import annotations

from typing import Any


class NaviLinkError(Exception):
    """Base class; ``context`` holds non-secret details (device, endpoint, code)."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        if not self.context:
            return self.message
        ctx = ", ".join(f"{k}={v}" for k, v in self.context.items() if v is not None)
        return f"{self.message} ({ctx})" if ctx else self.message


class ConfigurationError(NaviLinkError):
    """A setting is missing or invalid."""


class AuthenticationError(NaviLinkError):
    """Sign-in or refresh failed for a reason other than a rejected password."""


class InvalidCredentialsError(AuthenticationError):
    """The cloud rejected the e-mail/password. Retrying would risk locking the account."""


class APIError(NaviLinkError):
    """A REST call failed: HTTP error or an error envelope ``{"code": !=200, "msg": ...}``."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        msg: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, msg=msg, endpoint=endpoint)
        self.status = status
        self.code = code
        self.msg = msg
        self.endpoint = endpoint


class NaviLinkConnectionError(NaviLinkError):
    """The MQTT (or REST transport) connection failed or dropped."""


class DeviceOfflineError(NaviLinkError):
    """The device is offline or does not answer."""


class RequestTimeoutError(DeviceOfflineError):
    """No reply to one request within the timeout."""


class ValidationError(NaviLinkError, ValueError):
    """A control value is outside what the device accepts."""


class PayloadError(NaviLinkError, ValueError):
    """A wire message could not be parsed; ``raw`` keeps (a prefix of) the offending text."""

    def __init__(self, message: str, *, raw: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.raw = raw


class StoreError(NaviLinkError):
    """The data directory cannot be written or read."""


# --- the original NaviLink library's exception names, resolved to this tree ---------------------
# Its DeviceError and CommunicationError were bases of several errors; ours are split by cause,
# so they map to the base class (catching them catches at least what the original raised).
NavilinkError = NaviLinkError  # its first releases spelt it this way
DeviceError = NaviLinkError
CommunicationError = NaviLinkError
TokenExpiredError = AuthenticationError
MQTTError = NaviLinkConnectionError
WebSocketError = NaviLinkConnectionError
MessageError = PayloadError


class DiskFullError(StoreError):
    """The disk (or quota) holding the data directory is full. Nothing new is stored until space
    is freed; rows already spooled are kept and written when space returns. ``folder`` names it."""

    disk_full = True

    def __init__(self, message: str, *, folder: Any) -> None:
        super().__init__(message)
        self.folder = folder
