"""The warehouse's one registry: every model of ``sql/`` in build order, its grain and how it is
kept (a view over raw samples, a table refreshed by day, or a table refreshed per device)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# view:   a view over the raw Parquet (per sample); needs the project's connect() to resolve.
# days:   a table computed from raw samples, replaced per device from a local day on (day_column);
#         a refresh reads the changed days plus one earlier day with data as context.
# device: computed per device from stored tables only (device-level fits and what uses them); a
#         refresh recomputes every row of each changed device, without reading raw samples.
Keep = Literal["view", "days", "device"]


@dataclass(frozen=True)
class Model:
    name: str
    grain: str
    keep: Keep
    day_column: str | None = None  # days: the local day a row belongs to (an event's start day)
    # days: the latest instant a row depends on; a refresh reaching past it recomputes the row
    context_end: str | None = None
    stored: bool = True  # False: a view (over stored tables, for keep="device")

    @property
    def table(self) -> bool:
        return self.keep != "view" and self.stored


MODELS: tuple[Model, ...] = (
    Model("stg_status", "device + status sample", "view"),
    Model("stg_energy_daily", "device + day of the device's own history", "view"),
    Model("stg_events", "collector event", "view"),
    Model("int_aligned_samples", "device + status sample with a next one", "view"),
    Model("int_intervals", "device + sample interval (piece)", "view"),
    Model("int_gaps", "device + local day + gap", "view"),
    Model("int_cycle_pieces", "device + piece inside a heating cycle", "view"),
    Model("int_energy_slots", "device + 15-minute slot", "view"),
    Model("int_hot_water", "device + status sample", "view"),
    Model("int_day_energy", "device + local day", "days", "local_day"),
    Model("int_device_states", "device + local day + setpoint state", "days", "local_day"),
    Model("int_mode_fragments", "device + local day + mode run", "days", "local_day"),
    Model("int_cycle_base", "device + heating cycle", "days", "local_day", "context_end"),
    Model("int_draw_base", "device + draw", "days", "local_day", "draw_end"),
    Model("int_standby_windows", "device + standby window", "days", "local_day", "window_end"),
    Model("int_element_runs", "device + element run", "days", "local_day", "run_end"),
    Model("int_element_days", "device + local day with element-only heating", "days", "local_day"),
    Model("int_draw_inlet", "device + draw", "days", "local_day", "draw_end"),
    Model("int_cycle_hp_map", "device + heating cycle with compressor energy", "days", "local_day",
          "cycle_end"),
    Model("hot_water", "device + status sample", "days", "local_day", "received_at"),
    Model("runouts", "device + draw that ran out of hot water", "days", "local_day", "draw_end"),
    Model("int_health_days", "device + local day + error code", "days", "local_day", "last_next_at"),
    Model("int_error_days", "device + local day + error code + sub-code", "days", "local_day",
          "last_at"),
    Model("int_device_capacity", "device", "device"),
    Model("standby_loss", "device + standby window", "device"),
    Model("int_device_loss", "device", "device"),
    Model("int_cycles", "device + heating cycle", "device", stored=False),
    Model("int_device_models", "device", "device"),
    Model("mode_cycles", "device + mode run", "device"),
    Model("heating_cycles", "device + heating cycle", "device"),
    Model("draws", "device + draw", "device"),
    Model("recovery_rates", "device + measured heating cycle", "device"),
    Model("energy_daily", "device + local day", "device"),
    Model("efficiency_daily", "device + local day", "device"),
    Model("efficiency_monthly", "device + local month", "device"),
    Model("element_use", "device + element run", "device"),
    Model("device_inlet_monthly", "device + local month with draws", "device"),
    Model("int_device_fit", "device + scope (all time, or an ISO week with data)", "device"),
    Model("device_model", "device", "device"),
    Model("device_model_history", "device + ISO week with data", "device"),
    Model("findings", "device + finding", "device"),
)

BY_NAME: dict[str, Model] = {m.name: m for m in MODELS}
NAMES: tuple[str, ...] = tuple(m.name for m in MODELS)
MARTS: tuple[str, ...] = tuple(n for n in NAMES if not n.startswith(("stg_", "int_")))
TABLES: tuple[str, ...] = tuple(m.name for m in MODELS if m.table)


def of_keep(keep: Keep) -> tuple[Model, ...]:
    return tuple(m for m in MODELS if m.keep == keep)
