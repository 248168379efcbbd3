"""Cumulative electricity per heater from the warehouse's ``energy_daily`` mart (docs/metrics.md).

The one place the Home Assistant sink reads the warehouse: the same numbers as the report, summed
over every stored day, so they only grow (HA's ``total_increasing``).
"""

from __future__ import annotations

from typing import Any

from ..config import NaviLinkConfig
from ..identity import require_mac

SQL = """
select count(*) as days, min(day) as first_day, max(day) as last_day,
       sum(compressor_wh) as compressor_wh, sum(element_wh) as element_wh, sum(total_wh) as total_wh
from energy_daily where device = ?
"""


def energy_totals(config: NaviLinkConfig, mac: str) -> dict[str, Any]:
    """kWh since the first stored day: ``heat_pump_kwh``, ``element_kwh``, ``total_kwh`` (standby
    included), with ``first_day``/``last_day`` (ISO dates); all None when the heater has no data."""
    from .. import warehouse

    row = warehouse.query(config, SQL, [require_mac(mac)]).to_dicts()[0]

    def kwh(col: str) -> float | None:
        v = row[col]
        return None if v is None or not row["days"] else round(float(v) / 1000.0, 3)

    return {
        "heat_pump_kwh": kwh("compressor_wh"), "element_kwh": kwh("element_wh"), "total_kwh": kwh("total_wh"),
        "first_day": row["first_day"].isoformat() if row["first_day"] is not None else None,
        "last_day": row["last_day"].isoformat() if row["last_day"] is not None else None,
    }
