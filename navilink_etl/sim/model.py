"""The seam between the fake cloud's device agent (wire) and the simulated heater (physics).

``sim/agent.py`` speaks MQTT and only ever calls a ``DeviceModel``; ``sim/device.py`` implements
it on top of the plant model. All times are timezone-aware UTC *simulated* time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Push:
    """A device-originated snapshot: ``status`` already carries ``command`` = the event code."""

    at: datetime
    status: dict[str, int]


class DeviceModel(Protocol):
    mac: str  # 12 lowercase hex characters
    additional_value: str  # e.g. "5322", echoed in every message
    home_seq: int
    device_name: str  # e.g. "NWP500"
    firmware: str  # "2025-09" (87 keys) or "2025-10" (+ heatMinOpTemperature and recirc*)
    volume_gal: int  # 50, 65 or 80

    def advance_to(self, t: datetime) -> None:
        """Run the plant forward to simulated time ``t`` (no-op if ``t`` is not later)."""

    def snapshot(self, command: int) -> dict[str, int]:
        """The full status object now, with ``status.command`` = ``command``, in the wire's key order."""

    def apply_control(self, command: int, mode: str | None, param: list[int]) -> bool:
        """Apply a control request as the real device would; False if it is ignored (e.g. GOOUT_DAY)."""

    def drain_pushes(self) -> list[Push]:
        """Snapshots for each state change since the last call (event codes per docs/protocol.md 3.8)."""

    def feature(self) -> dict[str, Any]:
        """The DID/feature object (``response.feature``)."""

    def energy_usage(self, year: int, months: list[int]) -> dict[str, Any]:
        """The energy reply's ``response`` body: typeOfUsage, total, usage[{year, month, data}]."""
