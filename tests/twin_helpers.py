"""Shared setup of the what-if accuracy tests: one household simulated as truth A and, with the
same seed (same weather and draws), under each scenario as truth B; the twin fitted on A's
warehouse with the true mean inlet configured, backcasting A and predicting every B; the truth's
figures over the same period, computed with the twin's own definitions (twin/metrics.py)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from navilink_etl import warehouse
from navilink_etl.config import NaviLinkConfig
from navilink_etl.physics import f_to_c
from navilink_etl.twin import Scenario, whatif
from navilink_etl.twin.metrics import Window, run_metrics
from navilink_etl.twin.replay import epoch_frame
from navilink_etl.twin.tariff import price_function

DELIVERY_C = f_to_c(105.0)


def truth_frame(data: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(data / "truth" / name / "**" / "*.parquet", hive_partitioning=False)


def whatif_world(root: Path, *, days: float, seed: int, start: datetime, tz: str, base: dict[str, Any],
                 scenarios: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Simulate A and every B under ``root``, fit and predict; returns root, cfg, result, truth
    (per name: A and each scenario), price and window."""
    from navilink_etl.sim.simulate import simulate

    common: dict[str, Any] = {"devices": 1, "days": days, "interval_s": 30, "seed": seed, "start": start,
                              "ems_tz": tz}
    simulate(root / "A", **common, **base)
    for name, opts in scenarios.items():
        simulate(root / name, **common, **(base | opts))
    inlet_c = truth_frame(root / "A", "steps")["inlet_c"].mean()
    assert isinstance(inlet_c, float)
    cfg = NaviLinkConfig(data_dir=root / "A", polling_interval=30, timezone=tz,
                         inlet_temperature_f=inlet_c * 1.8 + 32)
    warehouse.refresh(cfg)
    result = whatif(cfg, scenarios=[Scenario(n, **o) for n, o in scenarios.items()])
    assert result.inputs is not None
    price, _ = price_function(cfg, result.device)
    window = Window(16 * 60, 21 * 60, tz)
    t0, t1 = result.inputs.t0, result.inputs.t1

    def truth_m(data: Path) -> dict[str, float | None]:
        steps = epoch_frame(truth_frame(data, "steps"), ("t_start", "t_end"))
        steps = steps.filter((pl.col("t_start") >= t0) & (pl.col("t_start") < t1))
        return run_metrics(steps, epoch_frame(truth_frame(data, "draws"), ("start", "end")), price, window,
                           DELIVERY_C)

    truth = {name: truth_m(root / name) for name in ["A", *scenarios]}
    return {"root": root, "cfg": cfg, "result": result, "truth": truth, "price": price, "window": window}
