"""Ground-truth ledger of one simulated heater: 60-s step rows, heating cycles and draws, kept
as column lists while the plant runs and turned into frames/Parquet per ``sim/truth.py``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .truth import cycle_schema, device_schema, draw_schema, step_schema

# row tuples hold every schema column except the leading "device"
STEP_FIELDS = tuple(k for k in step_schema() if k != "device")
CYCLE_FIELDS = tuple(k for k in cycle_schema() if k != "device")
DRAW_FIELDS = tuple(k for k in draw_schema() if k != "device")
_OBJECT_FIELDS = ("cycle_id", "draw_id", "elec_element_cause")  # nullable: kept as lists


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class TruthLog:
    """Rows appended as tuples in schema order (times as epoch seconds until ``frames``)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.steps: list[tuple[Any, ...]] = []
        self.steps_columns: dict[str, Any] | None = None  # steps handed over as columns instead
        self.cycles: list[tuple[Any, ...]] = []
        self.draws: list[tuple[Any, ...]] = []
        self.device_row: dict[str, Any] | None = None

    def take_columns(self) -> dict[str, Any]:
        """Hand over the step rows as columns (cheap to pickle) and forget them."""
        import numpy as np

        rows, self.steps = self.steps, []
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in STEP_FIELDS]
        out: dict[str, Any] = {}
        for f, c in zip(STEP_FIELDS, cols, strict=True):
            out[f] = list(c) if f in _OBJECT_FIELDS else np.asarray(c, dtype=np.float64)
        out["dhw_mode"] = np.asarray(out["dhw_mode"], dtype=np.int32)
        return out

    def clear(self) -> None:
        self.steps = []
        self.steps_columns = None
        self.cycles.clear()
        self.draws.clear()

    def frames(self) -> dict[str, Any]:
        """polars DataFrames: steps, cycles, draws (and devices when set)."""
        import polars as pl

        def frame(rows: list[tuple[Any, ...]] | dict[str, Any], fields: tuple[str, ...],
                  schema: dict[str, Any], time_cols: tuple[str, ...]) -> pl.DataFrame:
            if isinstance(rows, dict):  # already columns (see ``columns``)
                n = len(rows[fields[0]])
                data: dict[str, Any] = {"device": [self.device] * n}
                data.update({f: rows[f] for f in fields})
            else:
                cols: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
                data = {"device": [self.device] * len(rows)}
                data.update({f: list(c) for f, c in zip(fields, cols, strict=True)})
            raw_schema = {k: (pl.Float64 if k in time_cols else v) for k, v in schema.items()}
            df = pl.DataFrame(data, schema=raw_schema)
            return df.with_columns(
                [(pl.col(c) * 1e6).round().cast(pl.Int64).cast(pl.Datetime("us", "UTC")).alias(c)
                 for c in time_cols]
            )

        out = {
            "steps": frame(self.steps_columns if self.steps_columns is not None else self.steps,
                           STEP_FIELDS, step_schema(), ("t_start", "t_end")),
            "cycles": frame(self.cycles, CYCLE_FIELDS, cycle_schema(), ("start", "end")),
            "draws": frame(self.draws, DRAW_FIELDS, draw_schema(), ("start", "end")),
        }
        if self.device_row is not None:
            out["devices"] = pl.DataFrame([self.device_row], schema=device_schema())
        return out

    def write(self, data_dir: Path) -> int:
        """Append the collected rows under ``data_dir/truth`` and clear them; returns rows written."""
        import polars as pl

        frames = self.frames()
        root = Path(data_dir) / "truth"
        n = 0
        tag = uuid.uuid4().hex
        steps = frames["steps"]
        if steps.height:
            steps = steps.with_columns(pl.col("t_start").dt.date().alias("date"))
            for (day,), part in steps.group_by("date", maintain_order=True):
                d = root / "steps" / f"device={self.device}" / f"date={day}"
                d.mkdir(parents=True, exist_ok=True)
                part.drop("date").write_parquet(d / f"part-{tag}.parquet")
            n += steps.height
        for name in ("cycles", "draws"):
            df = frames[name]
            if df.height:
                d = root / name / f"device={self.device}"
                d.mkdir(parents=True, exist_ok=True)
                df.write_parquet(d / f"part-{tag}.parquet")
                n += df.height
        if "devices" in frames:
            d = root / "devices"
            d.mkdir(parents=True, exist_ok=True)
            frames["devices"].write_parquet(d / f"part-{self.device}.parquet")
            self.device_row = None
            n += 1
        self.clear()
        return n
