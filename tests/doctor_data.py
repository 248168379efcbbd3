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

# Drift (the parameter_drift rule over device_model_history): two heaters for 5 weeks from a
# Monday, healthy for 3 weeks, then one loses heat 50 % faster (UA x 1.5) with its elements at
# 85 % of their power, the other's heat pump at 88 % of its COP (too small for cop_drop).
DRIFT_START = datetime(2026, 2, 2, 8, tzinfo=UTC)  # Monday, local midnight
DRIFT_DAYS = 35
DRIFT_FAULT_DAY = 21
DRIFT_HEATERS = {
    52: [Fault("ua_increase", DRIFT_START + timedelta(days=DRIFT_FAULT_DAY), scale=1.5),
         Fault("element_degradation", DRIFT_START + timedelta(days=DRIFT_FAULT_DAY), scale=0.85)],
    53: [Fault("cop_degradation", DRIFT_START + timedelta(days=DRIFT_FAULT_DAY), cop_scale=0.88)],
}


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


# what the weekly fit (int_device_fit -> device_model_history) reads, cut the same way; the
# device-level constants it takes from int_device_models (all data) stay as stored
_FIT_CUT = {
    "int_device_states": "local_day < cast(? as date)",
    "standby_loss": "window_end < timezone('" + TZ + "', cast(? as timestamp))",
    "int_cycles": "cycle_end < timezone('" + TZ + "', cast(? as timestamp))",
    "int_cycle_hp_map": "cycle_end < timezone('" + TZ + "', cast(? as timestamp))",
    "int_element_days": "local_day < cast(? as date)",
    "int_draw_inlet": "draw_end < timezone('" + TZ + "', cast(? as timestamp))",
    "int_day_energy": "local_day < cast(? as date)",
}


def findings_as_of(con, local_midnight: datetime) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """The findings a refresh at ``local_midnight`` (naive, local time) would have stored (the
    weekly fit recomputed over the cut tables)."""
    from navilink_etl import warehouse

    day = local_midnight.strftime("%Y-%m-%d %H:%M:%S")
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    for name, where in (_CUT | _FIT_CUT).items():
        con.execute(f'CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM "{catalog}".main.{name} '
                    "WHERE "
                    + where.replace("?", f"'{day}'"))
    for name in ("int_device_fit", "device_model_history"):
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {warehouse.model_sql(name)}")
    try:
        return con.sql(warehouse.model_sql("findings")).pl()
    finally:
        for name in ("device_model_history", "int_device_fit", *_CUT, *_FIT_CUT):
            con.execute(f"DROP VIEW IF EXISTS temp.{name}")
