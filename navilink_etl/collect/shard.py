"""Which collector shard owns a device: rendezvous (highest-random-weight) hashing of the MAC.

``Shard(k, n)`` owns the devices for which shard ``k`` scores highest among ``1..n``; the score is
a keyed BLAKE2b of (MAC, shard number), so the answer is the same on every machine and at every
restart, does not depend on which other devices the account lists, and when ``n`` grows to
``n + 1`` only the devices whose new top score is shard ``n + 1`` move (about ``1/(n + 1)`` of
them); none move between the old shards. Python's ``hash()`` is salted per process and is not used.

A collector's MQTT client ids carry its shard and start time (``fleet_client_id``), so collectors
can tell a message addressed to another collector of the fleet from one addressed to a phone app,
and which of two collectors polling one device runs the newer configuration (``collect.fleet``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from ..errors import ConfigurationError
from ..identity import normalize_mac

_KEY = b"navilink-etl shard v1"  # fixed: changing it would move every device
_SPEC = re.compile(r"^\s*(\d{1,6})\s*/\s*(\d{1,6})\s*$")
_FLEET_ID = re.compile(r"navilink-etl-s(\d{1,6})of(\d{1,6})-([0-9a-f]{8})[0-9a-f]{4}(?:-c\d+)?")
FIX = "use K/N with 1 <= K <= N, e.g. --shard 1/4 (or NAVILINK_SHARD=1/4); 1/1 is one collector for all"


def score(mac: str, k: int) -> int:
    """The rendezvous weight of shard ``k`` for ``mac`` (64 bits, keyed BLAKE2b)."""
    digest = hashlib.blake2b(f"{mac}/{k}".encode(), digest_size=8, key=_KEY).digest()
    return int.from_bytes(digest, "big")


def owner(mac: str, n: int) -> int:
    """The shard (1..n) that owns ``mac`` among ``n`` shards."""
    m = normalize_mac(mac) or mac
    return max(range(1, n + 1), key=lambda k: score(m, k))


@dataclass(frozen=True)
class Shard:
    """Shard ``k`` of ``n`` (1-based); ``Shard(1, 1)`` owns every device."""

    k: int = 1
    n: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.k, int) and isinstance(self.n, int)) or self.n < 1 or not 1 <= self.k <= self.n:
            raise ConfigurationError(f"shard {self.k}/{self.n} is not valid; fix: {FIX}")

    @classmethod
    def parse(cls, spec: str | None, *, setting: str = "--shard / NAVILINK_SHARD") -> Shard:
        """``"K/N"`` -> Shard; None or "" -> 1/1. A bad value names the setting and the fix."""
        if spec is None or not str(spec).strip():
            return cls()
        m = _SPEC.match(str(spec))
        if m is None:
            raise ConfigurationError(f"{setting}: {str(spec)[:40]!r} is not K/N; fix: {FIX}")
        k, n = int(m.group(1)), int(m.group(2))
        if n < 1 or not 1 <= k <= n:
            why = "N must be at least 1" if n < 1 else f"K must be between 1 and N={n}"
            raise ConfigurationError(f"{setting}: {k}/{n} is not a shard ({why}); fix: {FIX}")
        return cls(k, n)

    @property
    def label(self) -> str:
        """``s<k>of<n>``: in spool folder names, Parquet file names and MQTT client ids."""
        return f"s{self.k}of{self.n}"

    @property
    def sharded(self) -> bool:
        return self.n > 1

    def owns(self, mac: str) -> bool:
        return self.n == 1 or owner(mac, self.n) == self.k

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


def fleet_client_id(shard: Shard, started: float | None = None) -> str:
    """A collector's MQTT client id base: ``navilink-etl-s<k>of<n>-<start, hex s><random>``.

    The shard and start time let other collectors tell which configuration is newer
    (``FleetId``); the random part keeps ids unique across accounts and machines."""
    t = int(time.time() if started is None else started) & 0xFFFFFFFF
    return f"navilink-etl-{shard.label}-{t:08x}{secrets.token_hex(2)}"


@dataclass(frozen=True)
class FleetId:
    """What a collector's client id says: its shard and when it started (epoch seconds)."""

    shard: Shard
    started: int

    @classmethod
    def parse(cls, client_id: str) -> FleetId | None:
        m = _FLEET_ID.fullmatch(client_id)
        if m is None:
            return None
        k, n = int(m.group(1)), int(m.group(2))
        if n < 1 or not 1 <= k <= n:
            return None
        return cls(Shard(k, n), int(m.group(3), 16))


def is_fleet_client_id(client_id: str) -> bool:
    """True for the client ids ``fleet_client_id`` (plus a connection suffix ``-c<i>``) makes."""
    return FleetId.parse(client_id) is not None
