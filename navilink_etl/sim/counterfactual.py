"""The same simulated household re-run with other settings (truth only, no wire): what a heater
would have used in heat-pump-only mode, so tests can measure how much element use was avoidable.

``simulate_truth`` rebuilds exactly the heater ``simulate()`` runs for a seed and device index
(same MAC, seed, weather, draws, options) and returns its ground-truth frames; ``heat_pump_only``
does the same with the DHW mode set to Heat Pump wherever that is possible (Vacation and timed
mode changes of ``plan`` aside: the plan's mode changes are dropped, its setpoint changes kept).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..protocol import DhwMode
from .device import SimulatedDevice
from .ledger import TruthLog
from .simulate import device_mac

HEATING_ELEC = ("elec_compressor_wh", "elec_upper_wh", "elec_lower_wh", "elec_standby_wh")


def simulate_truth(*, seed: int, start: datetime, days: float, index: int = 0,
                   draws: str | None = "household", **device_options: Any) -> dict[str, Any]:
    """Ground-truth frames (steps, cycles, draws, devices) of device ``index`` of
    ``simulate(seed=seed, start=start, days=days, ...)``, without writing anything."""
    mac = device_mac(seed, index)
    dseed = (seed * 1_000_003 + index) & 0x7FFFFFFF
    truth = TruthLog(mac)
    dev = SimulatedDevice(mac, seed=dseed, start=start, truth=truth, draws=draws, **device_options)
    dev.advance_to(start + timedelta(days=days))
    dev.heater.finish()
    return truth.frames()


def heat_pump_only_options(device_options: dict[str, Any]) -> dict[str, Any]:
    """``device_options`` with the heat pump as the only source where a setting allows it."""
    out = dict(device_options)
    if out.get("mode") != DhwMode.VACATION:
        out["mode"] = DhwMode.HEAT_PUMP
    if "plan" in out:
        out["plan"] = [p for p in out["plan"] if p[1] != "mode"]
    return out


def heat_pump_only(*, seed: int, start: datetime, days: float, index: int = 0,
                   **device_options: Any) -> dict[str, Any]:
    """``simulate_truth`` of the same household in Heat Pump mode (see the module docstring)."""
    return simulate_truth(seed=seed, start=start, days=days, index=index,
                          **heat_pump_only_options(device_options))


def avoidable_wh(actual_steps: Any, counterfactual_steps: Any) -> float:
    """True avoidable electricity: the actual run's electricity minus the heat-pump-only run's,
    the latter corrected to the actual run's heat (a colder tank loses less and delivers less to
    the draws; that heat is charged at the counterfactual's own compressor COP)."""
    import polars as pl

    def totals(steps: pl.DataFrame) -> tuple[float, float, float, float]:
        row = steps.select(
            pl.sum_horizontal(*[pl.col(c) for c in HEATING_ELEC]).sum().alias("elec"),
            (pl.col("heat_compressor_wh") + pl.col("heat_element_wh")).sum().alias("heat"),
            pl.col("heat_compressor_wh").sum().alias("hp_heat"),
            pl.col("elec_compressor_wh").sum().alias("hp_elec"),
        ).row(0)
        return float(row[0]), float(row[1]), float(row[2]), float(row[3])

    e_a, q_a, _, _ = totals(actual_steps)
    e_c, q_c, hp_q, hp_e = totals(counterfactual_steps)
    cop = hp_q / hp_e if hp_e > 0 else 1.0
    return e_a - (e_c + (q_a - q_c) / cop)
