"""Where the Home Assistant sink publishes: ``mqtt://[user:pass@]host[:port]`` (``mqtts://`` for TLS).

Pure parsing, no MQTT import; the password is kept as a ``SecretStr`` and never shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

from ..redact import SecretSet

SCHEMES = {"mqtt": 1883, "mqtts": 8883}
_secrets = SecretSet()  # the live broker password, masked in every log line
URL_FIX = "use mqtt://[user:password@]host[:port] or mqtts://... (TLS), e.g. mqtt://ha:secret@192.168.1.10:1883"


@dataclass(frozen=True)
class PublishTarget:
    """A parsed broker URL; ``display`` is safe to log (no password)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)

    @property
    def display(self) -> str:
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"

    @property
    def password_value(self) -> str | None:
        return self.password.get_secret_value() if self.password is not None else None

    def __str__(self) -> str:
        return self.display


def parse_publish_url(url: str) -> PublishTarget:
    """Parse a broker URL; a ``ValueError`` says what is wrong without repeating the password."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("is empty")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        host = parts.hostname
    except ValueError as exc:  # e.g. a non-numeric or out-of-range port
        what = "bad port" if "port" in str(exc).lower() else "malformed"
        raise ValueError(f"is not a valid URL ({what})") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(f"has scheme {parts.scheme or 'none'!r}, expected mqtt:// or mqtts://")
    if not host:
        raise ValueError("names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("has a path, query or fragment; only scheme, credentials, host and port are used")
    if port == 0:
        raise ValueError("has port 0")
    if parts.password is not None and not parts.username:
        raise ValueError("has a password but no user name")
    password = unquote(parts.password) if parts.password else None
    return PublishTarget(host=host, port=port or SCHEMES[parts.scheme], tls=parts.scheme == "mqtts",
                         username=unquote(parts.username) if parts.username else None,
                         password=SecretStr(password) if password else None)


def register_secret(target: PublishTarget | None) -> None:
    """Mask this target's password in all logs (replaces the previous one)."""
    _secrets.set("publish_password", target.password_value if target is not None else None)
