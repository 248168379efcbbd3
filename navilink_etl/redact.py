"""Belt and braces for secrets: every handler's final formatted text is masked in one place.

Holders of secrets (the sign-in, the config's password) keep their *live* values in a ``SecretSet``;
replacing a value drops the old one and ``clear()`` (or the holder going away) drops them all, so
the registry never grows. ``install(handler)`` wraps the handler's formatter: message, arguments,
exception text and stack are masked after they are formatted, at every level.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref

MASK = "***"
SUBSTRING_MIN = 6  # secrets this long are masked wherever they occur
WORD_MIN = 4  # 4-5 characters (short passwords): masked as a whole word only
# 1-3 characters: masked only as a quoted value or after "=" / ":" (how values show up in reprs,
# JSON and key=value text); masking every "a" or "1" would wreck every log line.
_WORD = r"[A-Za-z0-9_]"

_lock = threading.RLock()  # log records are formatted in worker threads too
_holders: weakref.WeakSet[SecretSet] = weakref.WeakSet()
_pattern: re.Pattern[str] | None = None
_dirty = True


def _changed() -> None:
    global _dirty
    with _lock:
        _dirty = True


class SecretSet:
    """One holder's live secrets by name: ``set`` replaces, ``clear`` forgets them all."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        with _lock:
            _holders.add(self)
        weakref.finalize(self, _changed)

    def set(self, name: str, value: str | None) -> None:
        if not isinstance(value, str) or not value:
            value = None
        with _lock:
            if self._values.get(name) == value:
                return
            if value is None:
                self._values.pop(name, None)
            else:
                self._values[name] = value
            _changed()

    def clear(self) -> None:
        with _lock:
            if self._values:
                self._values.clear()
                _changed()

    def values(self) -> list[str]:
        with _lock:
            return list(self._values.values())

    def __repr__(self) -> str:
        return f"SecretSet({len(self._values)} value(s))"


def _piece(secret: str) -> str:
    s = re.escape(secret)
    if len(secret) >= SUBSTRING_MIN:
        return s
    if len(secret) >= WORD_MIN:
        return rf"(?<!{_WORD}){s}(?!{_WORD})"
    return rf"(?<=['\"])\s*{s}\s*(?=['\"])|(?<=[=:])\s*{s}(?!{_WORD})"


def live_secrets() -> set[str]:
    """Every live secret value (for tests and the size figure; never log these)."""
    with _lock:
        holders = list(_holders)
    return {v for h in holders for v in h.values()}


def _current() -> re.Pattern[str] | None:
    global _pattern, _dirty
    with _lock:
        if not _dirty:
            return _pattern
        _dirty = False
        values = {v for h in list(_holders) for v in h.values()}
        # longest first, so a secret containing another is masked whole
        pieces = [_piece(v) for v in sorted(values, key=len, reverse=True)]
        _pattern = re.compile("|".join(pieces)) if pieces else None
        return _pattern


def redact(text: str) -> str:
    """``text`` with every live secret replaced by ``***`` (one regex pass)."""
    pattern = _current()
    return text if pattern is None else pattern.sub(MASK, text)


class RedactingFormatter(logging.Formatter):
    """Formats with the handler's own formatter, then masks the whole result."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def install(handler: logging.Handler) -> logging.Handler:
    """Make ``handler`` mask secrets in everything it writes (idempotent)."""
    current = handler.formatter
    if not isinstance(current, RedactingFormatter):
        handler.setFormatter(RedactingFormatter(current))
    return handler


_configured = SecretSet()


def register_password(value: str | None) -> None:
    """The configured password (masked at any length); a new config's password replaces it."""
    _configured.set("password", value)


def register_storage_secret(value: str | None) -> None:
    """The object store's AWS_SECRET_ACCESS_KEY (masked at any length), like the password."""
    _configured.set("storage_secret", value)
