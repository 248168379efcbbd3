"""Schemas of the simulator's ground truth under ``<data_dir>/truth/`` (what analytics are judged by).

Datasets (hive-partitioned Parquet, like the collected data):
  truth/devices/part-*.parquet                      one row per simulated device (its constants)
  truth/steps/device=<mac>/date=YYYY-MM-DD/*.parquet one row per device per truth interval (60 s)
  truth/cycles/device=<mac>/*.parquet               one row per true heating cycle
  truth/draws/device=<mac>/*.parquet                one row per true hot-water draw
Energies in Wh, temperatures in degC, times tz-aware UTC. ``elec_*`` is electrical input,
``heat_*`` heat delivered to the water. Per step: sum(elec_*) is all the unit drew; heat balance:
heat_compressor_wh + heat_element_wh - loss_wh - draw_wh = change in stored energy.
"""

from __future__ import annotations

from typing import Any

TRUTH_STEP_S = 60


def device_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "device": pl.String, "volume_gal": pl.Int32, "water_l": pl.Float64,
        "capacity_wh_per_k": pl.Float64, "ua_w_per_k": pl.Float64, "voltage_v": pl.Int32,
        "element_w": pl.Float64, "location": pl.String, "seed": pl.Int64,
        "reference_c": pl.Float64, "firmware": pl.String, "poll_interval_s": pl.Float64, "cop_scale": pl.Float64,
    }  # fmt: skip


def step_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "device": pl.String, "t_start": pl.Datetime("us", "UTC"), "t_end": pl.Datetime("us", "UTC"),
        "elec_compressor_wh": pl.Float64,  # compressor + fan while the compressor runs
        "elec_upper_wh": pl.Float64, "elec_lower_wh": pl.Float64,
        "elec_standby_wh": pl.Float64,  # controls (~1 W) and fan/EEV pre-run
        "heat_compressor_wh": pl.Float64, "heat_element_wh": pl.Float64,
        "loss_wh": pl.Float64, "draw_l": pl.Float64, "draw_wh": pl.Float64,
        "stored_wh": pl.Float64,  # C x (tank mean - reference) at t_end
        "tank_mean_c": pl.Float64, "tank_upper_c": pl.Float64, "tank_lower_c": pl.Float64,
        "ambient_c": pl.Float64, "inlet_c": pl.Float64, "setpoint_c": pl.Float64,
        "dhw_mode": pl.Int32, "compressor_s": pl.Float64, "element_s": pl.Float64,
        "cycle_id": pl.Int64,  # null when no heating cycle is active
        "draw_id": pl.Int64,  # null when no draw is active
        # why the controller ran an element (ELEMENT_CAUSES); null without element energy; in a
        # minute with two causes, the one with more element energy
        "elec_element_cause": pl.String,
    }  # fmt: skip


# the fixed vocabulary of ``elec_element_cause`` (and of the warehouse's element_use.cause)
ELEMENT_CAUSES = ("mode_electric", "mode_high_demand", "cold_lockout", "demand", "setpoint_raise",
                  "anti_legionella", "freeze_protection", "unknown")


def cycle_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "device": pl.String, "cycle_id": pl.Int64,
        "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC"),
        "source_mix": pl.String,  # heat_pump | hybrid | element
        "trigger": pl.String,  # draw | standby_loss | setpoint_raise | anti_legionella | mode_change | freeze_protection
        "elec_compressor_wh": pl.Float64, "elec_element_wh": pl.Float64, "elec_standby_wh": pl.Float64,
        "heat_compressor_wh": pl.Float64, "heat_element_wh": pl.Float64, "loss_wh": pl.Float64,
        "draw_overlap": pl.Boolean, "draw_wh": pl.Float64,
        "tank_mean_start_c": pl.Float64, "tank_mean_end_c": pl.Float64,
        "stored_start_wh": pl.Float64, "stored_end_wh": pl.Float64, "ambient_mean_c": pl.Float64,
        "cop": pl.Float64,  # heat_compressor_wh / elec_compressor_wh (null without compressor)
        "recovery_k_per_h": pl.Float64, "thermal_w": pl.Float64,  # (heat in) / duration
    }  # fmt: skip


def draw_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "device": pl.String, "draw_id": pl.Int64,
        "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC"),
        "volume_l": pl.Float64, "energy_wh": pl.Float64, "kind": pl.String,
        "outlet_mean_c": pl.Float64, "inlet_c": pl.Float64,
        "outlet_min_c": pl.Float64,  # the lowest outlet (tank top) temperature during the draw
        "below_105f_l": pl.Float64,  # litres drawn while the outlet was below 105 degF (40.6 degC)
    }  # fmt: skip
