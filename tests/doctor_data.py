"""Simulated stores for the hot-water, findings and doctor tests (faults from sim/faults.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from navilink_etl.config import NaviLinkConfig
from navilink_etl.sim.draws import L_PER_GAL, DrawStream
from navilink_etl.sim.faults import Fault

TZ = "America/Los_Angeles"
START = datetime(2026, 2, 1, 8, tzinfo=UTC)  # local midnight


class HeavyDraws(DrawStream):
    """A morning draw of 15-75 gal and an evening bath of 25-45 gal every day: some run out."""

    def __init__(self, seed: int, start: float) -> None:
        self.seed, self.start = seed, start
        super().__init__()

    def _days(self):  # type: ignore[no-untyped-def]
        rng = np.random.default_rng(self.seed)
        day = 0
        while True:
            base = self.start + day * 86400.0
            gal, gpm = float(rng.uniform(15, 75)), float(rng.uniform(1.8, 3.0))
            bath = float(rng.uniform(25, 45))
            yield [(base + 7 * 3600.0, gal / gpm * 60.0, gpm * L_PER_GAL, "shower"),
                   (base + 19 * 3600.0, bath / 2.5 * 60.0, 2.5 * L_PER_GAL, "bath")]
            day += 1


def config_for(data: Path, interval_s: int) -> NaviLinkConfig:
    """Settings as a user of this data would set them (the inlet temperature known)."""
    inlet_c = pl.read_parquet(data / "truth" / "steps" / "**" / "*.parquet")["inlet_c"].mean()
    assert isinstance(inlet_c, float)
    return NaviLinkConfig(data_dir=data, polling_interval=interval_s, timezone=TZ,
                          inlet_temperature_f=inlet_c * 1.8 + 32)


def at(days: float) -> datetime:
    return START + timedelta(days=days)


# One heater, 37 days: COP down 25 % from day 30, the lower sensor stuck from day 31, offline for
# 10 h on day 32, E480 shown from day 35 on. Each fault lies within 7 days of the data's end.
FAULT_DAYS = 37
FAULTS = [
    Fault("cop_degradation", at(30), cop_scale=0.75),
    Fault("stuck_sensor", at(31), sensor="lower"),
    Fault("outage", at(32.3), at(32.3 + 10 / 24)),
    Fault("error_code", at(35.2), code=480, sub_code=1),
]


# The findings mart judged at an earlier instant: the stored tables it reads, cut at a local
# midnight, shadow the real ones (temporary views), and its SQL runs as the refresh would run it.
_CUT = {
    "int_health_days": "local_day < cast(? as date)",
    "int_error_days": "local_day < cast(? as date)",
    "energy_daily": "day < cast(? as date)",
    "heating_cycles": "cycle_end < timezone('" + TZ + "', cast(? as timestamp))",
    "draws": "draw_end < timezone('" + TZ + "', cast(? as timestamp))",
    "runouts": "draw_end < timezone('" + TZ + "', cast(? as timestamp))",
}


def findings_as_of(con, local_midnight: datetime) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """The findings a refresh at ``local_midnight`` (naive, local time) would have stored."""
    from navilink_etl import warehouse

    day = local_midnight.strftime("%Y-%m-%d %H:%M:%S")
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    for name, where in _CUT.items():
        con.execute(f'CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM "{catalog}".main.{name} '
                    "WHERE "
                    + where.replace("?", f"'{day}'"))
    try:
        return con.sql(warehouse.model_sql("findings")).pl()
    finally:
        for name in _CUT:
            con.execute(f"DROP VIEW IF EXISTS temp.{name}")
