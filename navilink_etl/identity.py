"""Device identity: a MAC is 12 lowercase hex digits, checked once wherever a name enters.

Every file path the store forms from a device name goes through ``require_mac`` first (defence in
depth: the collector and importer already quarantine anything else), so nothing a cloud or a file
sends can name a path outside the data folder.
"""

from __future__ import annotations

import re

from .errors import PayloadError

_MAC = re.compile(r"[0-9a-f]{12}")
_SEPARATORS = re.compile(r"[:\-.\s]")


def normalize_mac(value: object) -> str | None:
    """``value`` as 12 lowercase hex digits (``AA:BB:...`` and ``aa-bb-...`` accepted), else None."""
    if not isinstance(value, str) or len(value) > 32:
        return None
    mac = _SEPARATORS.sub("", value).lower()
    return mac if _MAC.fullmatch(mac) else None


def is_mac(value: object) -> bool:
    """True when ``value`` already is a canonical MAC (12 lowercase hex digits, nothing else)."""
    return isinstance(value, str) and _MAC.fullmatch(value) is not None


def require_mac(value: object, *, what: str = "device MAC") -> str:
    """The canonical MAC of ``value`` or a ``PayloadError`` naming the field and the value."""
    mac = normalize_mac(value)
    if mac is None:
        shown = repr(value)[:60]
        raise PayloadError(f"{what} {shown} is not 12 hex digits", field=what)
    return mac
