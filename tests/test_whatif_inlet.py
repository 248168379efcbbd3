"""The inlet calibrated through the replay (twin/inlet.py, docs/metrics.md 6): without a
configured inlet, the twin moves the fitted one (1.7 K high in this conditioned room over 4 days) to where its
backcast's lower thermistor follows the measured one around the draws; with a configured inlet the
calibration does not run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from navilink_etl import warehouse
from navilink_etl.config import NaviLinkConfig
from navilink_etl.twin import whatif
from navilink_etl.twin.inlet import SEARCH_K, vertex

TZ = "America/Chicago"
START = datetime(2026, 1, 5, tzinfo=UTC)
FOUND_WITHIN_K = 1.0  # the calibrated inlet vs the simulator's true mean inlet


@pytest.fixture(scope="module")
def conditioned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from navilink_etl.sim.simulate import simulate

    root = tmp_path_factory.mktemp("whatif_inlet") / "A"
    simulate(root, devices=1, days=4, interval_s=30, seed=26, start=START, ems_tz=TZ, location="conditioned",
             setpoint_f=120.0, mode="energy_saver")
    true_c = float(pl.read_parquet(root / "truth" / "steps" / "**" / "*.parquet",
                                   hive_partitioning=False)["inlet_c"].mean())
    cfg = NaviLinkConfig(data_dir=root, polling_interval=30, timezone=TZ)
    warehouse.refresh(cfg)
    return {"root": root, "true_c": true_c, "cfg": cfg}


def test_the_fitted_inlet_is_calibrated_to_within_a_kelvin_of_the_truth(conditioned: dict[str, Any]) -> None:
    said: list[str] = []
    r = whatif(conditioned["cfg"], scenarios=[], progress=said.append)
    assert "inlet" in said and r.inlet_fit is not None and r.inlet_fitted_c is not None
    month = datetime.fromtimestamp(r.inputs.t0 if r.inputs else 0, UTC).month
    found, fitted, true_c = r.params.inlet_at_month(month), r.inlet_fitted_c, conditioned["true_c"]
    assert fitted - true_c > 1.5  # the fit reads high in this room: there is something to correct
    assert abs(found - true_c) <= FOUND_WITHIN_K, (found, fitted, true_c)
    assert -SEARCH_K <= r.inlet_fit.offset_k < 0 and r.inlet_fit.replays <= 8
    assert any("inlet calibrated" in n for n in r.params.notes)


def test_a_configured_inlet_is_never_calibrated(conditioned: dict[str, Any]) -> None:
    cfg = NaviLinkConfig(data_dir=conditioned["root"], polling_interval=30, timezone=TZ,
                         inlet_temperature_f=60.0)
    said: list[str] = []
    r = whatif(cfg, scenarios=[], progress=said.append)
    assert "inlet" not in said and r.inlet_fit is None and r.inlet_fitted_c is None
    assert not any("inlet calibrated" in n for n in r.params.notes)
    assert r.params.inlet_c == pytest.approx((60.0 - 32.0) / 1.8)


def test_the_parabola_vertex_stays_in_the_bracket() -> None:
    cache = {x: (x + 2.3) ** 2 for x in (-4.0, -3.0, -2.0, -1.0)}
    assert vertex(cache, -2.0, -3.0, -1.0) == pytest.approx(-2.3)
    assert vertex(cache, -2.0, -2.2, -1.0) == pytest.approx(-2.2)  # clamped
    assert vertex({-1.0: 2.0, -0.5: 1.0, 0.0: 0.5}, 0.0, -0.5, 0.0) == 0.0  # at the edge: no parabola
