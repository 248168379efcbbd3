"""Faults the simulator can inject, and their ground truth (``truth/faults``).

* ``cop_degradation``: the heat pump's COP falls to ``cop_scale`` x its map value from ``start``
  (linearly over ``ramp_days``; a clogged air filter or a refrigerant loss), via
  ``Heater.cop_scale``: the compressor draws the same power and delivers less heat.
* ``stuck_sensor``: the ``sensor`` ("upper" or "lower") tank thermistor's wire value stays at what
  it read at ``start`` (the controller still sees the water: only the reported value freezes).
* ``error_code``: the status shows ``errorCode`` = ``code`` and ``subErrorCode`` = ``sub_code``
  (docs/protocol.md 5.6) from ``start`` to ``end``; the plant runs on.
* ``outage``: nothing arrives from ``start`` to ``end`` (the simulator's outage windows).
* ``ua_increase``: the tank's standby loss coefficient UA becomes ``scale`` (> 1) x its own from
  ``start`` (linearly over ``ramp_days``): insulation soaked or damaged, a relief valve leaking hot
  water, a recirculation loop. The plant and the controller's idle path both use the new UA.
* ``element_degradation``: both elements deliver ``scale`` (< 1) x their power from ``start``
  (linearly over ``ramp_days``): an element failing (scale, a burnt coil section, a loose wire).

``end`` None lasts to the end of the run. ``simulate(..., faults=[...])`` applies the list to
every simulated device; the state changes at chunk boundaries placed at each fault's times
(daily during a ramp), so a run with faults takes the same physics as one without until then.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from .device import SimulatedDevice

FaultKind = Literal["cop_degradation", "stuck_sensor", "error_code", "outage", "ua_increase",
                    "element_degradation"]
KINDS: tuple[str, ...] = ("cop_degradation", "stuck_sensor", "error_code", "outage", "ua_increase",
                          "element_degradation")
_SCALED = ("ua_increase", "element_degradation")


def fault_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "device": pl.String, "fault": pl.String,  # one of KINDS
        "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC"),  # end null: open
        "cop_scale": pl.Float64, "sensor": pl.String, "code": pl.Int32, "sub_code": pl.Int32,
        "frozen_c": pl.Float64,  # stuck_sensor: the value the sensor kept reporting
        "scale": pl.Float64,  # ua_increase / element_degradation: the factor at the ramp's end
        "ramp_days": pl.Float64,
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    start: datetime
    end: datetime | None = None
    cop_scale: float = 0.75
    ramp_days: float = 0.0
    sensor: Literal["upper", "lower"] = "upper"
    code: int = 0
    sub_code: int = 0
    scale: float = 1.0  # ua_increase (> 1), element_degradation (in (0, 1))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, not {self.kind!r}")
        if self.start.tzinfo is None or (self.end is not None and self.end.tzinfo is None):
            raise ValueError("fault times must be timezone-aware (UTC)")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"fault {self.kind}: end {self.end} is not after start {self.start}")
        if self.kind == "cop_degradation" and not 0.0 < self.cop_scale <= 1.0:
            raise ValueError("cop_degradation: cop_scale must be in (0, 1]")
        if self.kind == "outage" and self.end is None:
            raise ValueError("outage: give its end")
        if self.kind == "error_code" and not 0 < self.code < 65536:
            raise ValueError("error_code: give the code (1-65535), e.g. 480")
        if self.kind == "ua_increase" and not 1.0 <= self.scale <= 10.0:
            raise ValueError("ua_increase: scale must be in [1, 10] (UA x scale)")
        if self.kind == "element_degradation" and not 0.0 < self.scale <= 1.0:
            raise ValueError("element_degradation: scale must be in (0, 1] (element power x scale)")
        if self.sensor not in ("upper", "lower"):
            raise ValueError("stuck_sensor: sensor must be 'upper' or 'lower'")

    @property
    def t0(self) -> float:
        return self.start.timestamp()

    @property
    def t1(self) -> float:
        return self.end.timestamp() if self.end is not None else math.inf

    def active(self, t: float) -> bool:
        return self.t0 <= t < self.t1


class FaultPlan:
    """The faults of one simulated device: when its state changes, what the wire shows."""

    def __init__(self, faults: list[Fault] | None, base_cop_scale: float = 1.0) -> None:
        self.faults = list(faults or [])
        self.base_cop_scale = base_cop_scale
        self.frozen: dict[int, float] = {}  # fault index -> the stuck sensor's value
        self._base: tuple[Any, float] | None = None  # (tank spec, element W) before any fault

    def breaks(self, t0: float, t_stop: float) -> list[float]:
        """Instants inside (t0, t_stop) where a fault begins, ends or its ramp moves on."""
        out: set[float] = set()
        for f in self.faults:
            if f.kind == "outage":
                continue
            out.add(f.t0)
            if f.end is not None:
                out.add(f.t1)
            if f.kind in ("cop_degradation", *_SCALED) and f.ramp_days > 0:
                out.update(f.t0 + 86400.0 * k for k in range(1, math.ceil(f.ramp_days) + 1))
        return sorted(t for t in out if t0 < t < t_stop)

    def cop_scale_at(self, t: float) -> float:
        scale = self.base_cop_scale
        for f in self.faults:
            if f.kind == "cop_degradation" and t >= f.t0 and t < f.t1:
                frac = 1.0 if f.ramp_days <= 0 else min(1.0, (t - f.t0) / (86400.0 * f.ramp_days))
                scale *= 1.0 - (1.0 - f.cop_scale) * frac
        return scale

    def scale_at(self, kind: str, t: float) -> float:
        """The product of the active ``kind`` faults' factors at ``t`` (ramps linear)."""
        out = 1.0
        for f in self.faults:
            if f.kind == kind and f.t0 <= t < f.t1:
                frac = 1.0 if f.ramp_days <= 0 else min(1.0, (t - f.t0) / (86400.0 * f.ramp_days))
                out *= 1.0 + (f.scale - 1.0) * frac
        return out

    def apply(self, dev: SimulatedDevice, t: float) -> None:
        """Set the device's state for the stretch starting at ``t`` (a break or the run's start)."""
        h = dev.heater
        scale = self.cop_scale_at(t)
        if scale != h.cop_scale:
            h.cop_scale = scale
            h._hp_at = -math.inf  # the cached COP of this step is stale
        if any(f.kind in _SCALED for f in self.faults):
            self._apply_scaled(h, t)
        codes = [(f.code, f.sub_code) for f in self.faults if f.kind == "error_code" and f.active(t)]
        dev.error = codes[-1] if codes else (0, 0)
        for i, f in enumerate(self.faults):
            if f.kind == "stuck_sensor" and f.active(t) and i not in self.frozen:
                self.frozen[i] = h.tank.upper_c if f.sensor == "upper" else h.tank.lower_c

    def _apply_scaled(self, h: Any, t: float) -> None:
        """UA and element power at ``t``, from the heater's own values before any fault."""
        if self._base is None:
            self._base = (h.tank.spec, h.element_w)
        spec, element_w = self._base
        ua = spec.ua_w_per_k * self.scale_at("ua_increase", t)
        if ua != h.tank.spec.ua_w_per_k:
            new = dataclasses.replace(spec, ua_w_per_k=ua)
            h.tank.spec = new
            h.tank._ua_node = ua / new.n_nodes
            h.spec = new
        h.element_w = element_w * self.scale_at("element_degradation", t)

    def on_wire(self, rows: np.ndarray) -> np.ndarray:
        """Captured states (``device.STATE_FIELDS`` rows) as the wire shows them: stuck sensors
        report their frozen value."""
        from .device import STATE_FIELDS

        if not self.frozen or rows.shape[0] == 0:
            return rows
        t = rows[:, STATE_FIELDS.index("t")]
        out = rows
        for i, value in self.frozen.items():
            f = self.faults[i]
            inside = (t >= f.t0) & (t < f.t1)
            if inside.any():
                out = out.copy() if out is rows else out
                out[inside, STATE_FIELDS.index(f"{f.sensor}_c")] = value
        return out

    def outages(self) -> list[tuple[datetime, datetime]]:
        return [(f.start, f.end) for f in self.faults if f.kind == "outage" and f.end is not None]

    def write_truth(self, data_dir: Path, device: str) -> int:
        """``truth/faults/part-<device>.parquet``: one row per injected fault."""
        import polars as pl

        if not self.faults:
            return 0
        rows = [{
            "device": device, "fault": f.kind, "start": f.start.astimezone(UTC),
            "end": f.end.astimezone(UTC) if f.end is not None else None,
            "cop_scale": f.cop_scale if f.kind == "cop_degradation" else None,
            "sensor": f.sensor if f.kind == "stuck_sensor" else None,
            "code": f.code if f.kind == "error_code" else None,
            "sub_code": f.sub_code if f.kind == "error_code" else None,
            "frozen_c": self.frozen.get(i),
            "scale": f.scale if f.kind in _SCALED else None,
            "ramp_days": f.ramp_days,
        } for i, f in enumerate(self.faults)]
        d = Path(data_dir) / "truth" / "faults"
        d.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(rows, schema=fault_schema()).write_parquet(d / f"part-{device}.parquet")
        return len(rows)
