"""Display units for reports: data is stored in SI (degC, K, Wh) and US gallons; °F only on the way out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

L_PER_GAL = 3.785


@dataclass(frozen=True, slots=True)
class Units:
    """Converts stored values for display: ``F`` (°F, gal; the default) or ``C`` (°C, L).

    The converters take scalars or numpy arrays.
    """

    system: Literal["F", "C"] = "F"

    @classmethod
    def of(cls, units: str | Units) -> Units:
        if isinstance(units, Units):
            return units
        u = str(units).strip().upper().lstrip("°")
        if u not in ("F", "C"):
            raise ValueError(f"units must be 'F' or 'C', got {units!r}")
        return cls(u)  # type: ignore[arg-type]

    @property
    def temp(self) -> str:
        return "°F" if self.system == "F" else "°C"

    @property
    def volume(self) -> str:
        return "gal" if self.system == "F" else "L"

    def t(self, c: Any) -> Any:
        """A temperature in degC -> display units."""
        if c is None:
            return None
        return c * 9.0 / 5.0 + 32.0 if self.system == "F" else c

    def dt(self, k: Any) -> Any:
        """A temperature difference or rate in K -> °F (x 1.8) or unchanged."""
        if k is None:
            return None
        return k * 1.8 if self.system == "F" else k

    def gal(self, gallons: Any) -> Any:
        """A volume in US gallons -> display units."""
        if gallons is None:
            return None
        return gallons if self.system == "F" else gallons * L_PER_GAL
