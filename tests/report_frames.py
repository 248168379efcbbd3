"""Small hand-built frames with the warehouse views' columns, for the report tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from navilink_etl.report.data import ReportData

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)  # midnight in Los Angeles (PST)
TZ = "America/Los_Angeles"
TS = pl.Datetime("us", "UTC")


def status(hours: float = 48, interval_s: int = 30, gap: tuple[float, float] | None = (10, 13)) -> pl.DataFrame:
    n = int(hours * 3600 / interval_s)
    i = np.arange(n)
    df = pl.DataFrame({
        "received_at": pl.Series([T0 + timedelta(seconds=interval_s * k) for k in range(n)], dtype=TS),
        "tank_upper_c": 50.0 + 2.0 * np.sin(i / 500),
        "tank_lower_c": 40.0 + 5.0 * np.sin(i / 300),
        "stored_wh": 5000.0 + 1000.0 * np.sin(i / 400),
        "dhw_charge_pct": (80 + 10 * np.sin(i / 400)).round(),
    })
    if gap:
        lo, hi = (T0 + timedelta(hours=h) for h in gap)
        df = df.filter((pl.col("received_at") < lo) | (pl.col("received_at") >= hi))
    return df


def cycles() -> pl.DataFrame:
    """Ten cycles: 6 heat pump (4 measured, 2 modelled), 3 hybrid, 1 element."""
    starts = [T0 + timedelta(hours=4 * k + 1) for k in range(10)]
    mix = ["heat_pump"] * 6 + ["hybrid"] * 3 + ["element"]
    dur = [3600.0 + 600 * k for k in range(10)]
    comp = [500.0 + 20 * k if m != "element" else 0.0 for k, m in enumerate(mix)]
    elem = [0.0 if m == "heat_pump" else 1500.0 for m in mix]
    return pl.DataFrame({
        "device": ["aabbccddeeff"] * 10,
        "cycle_start": pl.Series(starts, dtype=TS),
        "cycle_end": pl.Series([s + timedelta(seconds=d) for s, d in zip(starts, dur, strict=True)], dtype=TS),
        "duration_s": dur, "source_mix": mix, "compressor_wh": comp, "element_wh": elem,
        "ambient_c": [18.0 + k for k in range(10)],
        "cop": [3.0, 3.1, 2.9, 3.2, 2.8, 3.0, 2.7, 2.6, 2.5, None],
        "method": ["measured"] * 4 + ["modelled"] * 2 + ["measured"] * 4,
        "k_per_h": [5.0 + k for k in range(10)],
        "gal_per_h_67f": [10.0 + k for k in range(10)],
    })


def draws() -> pl.DataFrame:
    starts = [T0 + timedelta(hours=3 * k + 0.5) for k in range(12)]
    return pl.DataFrame({
        "device": ["aabbccddeeff"] * 12, "draw_start": pl.Series(starts, dtype=TS),
        "duration_s": [300.0] * 12, "equivalent_gal": [5.0 + k for k in range(12)],
        "energy_wh": [800.0 + 10 * k for k in range(12)],
    })


def energy_daily(days: int = 4) -> pl.DataFrame:
    d = [date(2026, 3, 1) + timedelta(days=k) for k in range(days)]
    comp = [1500.0 + 100 * k for k in range(days)]
    elem = [0.0, 1500.0] * (days // 2) + [0.0] * (days % 2)
    return pl.DataFrame({
        "device": ["aabbccddeeff"] * days, "day": d, "compressor_wh": comp, "element_wh": elem,
        "standby_wh": [30.0] * days, "total_wh": [c + e + 30.0 for c, e in zip(comp, elem, strict=True)],
        "coverage": [1.0, 0.9] + [0.99] * (days - 2), "gap_minutes": [0.0, 144.0] + [14.0] * (days - 2),
        "ems_heat_pump_wh": [c - 20 for c in comp], "ems_element_wh": elem,
        "residual_heat_pump_wh": [20.0] * days, "residual_element_wh": [0.0] * days,
    })


def standby() -> pl.DataFrame:
    return pl.DataFrame({
        "device": ["aabbccddeeff"] * 3,
        "window_start": pl.Series([T0 + timedelta(days=k, hours=1) for k in range(3)], dtype=TS),
        "ua_w_per_k": [2.0, 2.2, 2.4], "half_life_h": [90.0, 85.0, 80.0],
    })


def efficiency(days: int = 4) -> pl.DataFrame:
    d = [date(2026, 3, 1) + timedelta(days=k) for k in range(days)]
    return pl.DataFrame({
        "device": ["aabbccddeeff"] * days, "day": d, "heat_out_wh": [4500.0] * days,
        "total_wh": [1500.0] * days, "measured_heat_share": [0.5] * days, "cost": [0.3] * days,
        "resistance_cost": [0.8] * days, "savings": [0.5] * days, "element_cost": [0.1] * days,
    })


def element_use() -> pl.DataFrame:
    """Seven element runs: 3 demand, 2 cold lockout, 1 setpoint raise, 1 anti-Legionella."""
    causes = ["demand", "cold_lockout", "demand", "setpoint_raise", "cold_lockout", "demand",
              "anti_legionella"]
    starts = [T0 + timedelta(hours=5 * k + 2) for k in range(len(causes))]
    wh = [1200.0 + 100 * k for k in range(len(causes))]
    avoidable = [w * 0.7 if c in ("demand", "setpoint_raise") else 0.0 for w, c in zip(wh, causes, strict=True)]
    return pl.DataFrame({
        "device": ["aabbccddeeff"] * len(causes),
        "run_start": pl.Series(starts, dtype=TS),
        "run_end": pl.Series([s + timedelta(minutes=15) for s in starts], dtype=TS),
        "element_wh": wh, "cost": [w / 1000 * 0.2 for w in wh], "cause": causes,
        "avoidable_wh": avoidable, "avoidable_cost": [a / 1000 * 0.2 for a in avoidable],
    })


def report_data(device: str = "aabbccddeeff", days: int = 4) -> ReportData:
    return ReportData(
        device=device, start=date(2026, 3, 1), end=date(2026, 3, 1) + timedelta(days=days - 1),
        tz=TZ, status=status(), energy_daily=energy_daily(days), cycles=cycles(),
        recovery=cycles(), draws=draws(), standby=standby(), efficiency=efficiency(days),
        element_use=element_use(),
    )


def simulated(data_dir: Path, days: float = 3, interval_s: float = 60, devices: int = 1) -> Path:
    """A small simulated store in ``data_dir``, as `navilink-etl simulate` writes it."""
    from navilink_etl.sim.simulate import simulate

    simulate(data_dir, devices=devices, days=days, interval_s=interval_s, seed=0, loss=0.05)
    return data_dir
