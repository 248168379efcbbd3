"""The what-if twin in a garage (docs/metrics.md 6.1): January, the room near the heat pump's
37 degF lock-out, where the running heat pump's pull-down of its own room decides heat pump or
element. The pull-down is fitted from the room readings (twin/inputs.py ``fit_pull_down``); with
it the backcast and the what-ifs meet issue 14's targets (without it, the twin assumed none and
missed the totals by ~5 %).

The peak-window kWh is within 10 % in every scenario with the unseen draws put back
(twin/unseen.py) and the seen draws valued at the upper thermistor's reading while an element ran
(twin/inputs.py ``draw_outlet_c``): in electric mode the draws mart's outlet estimate alone (1-2 K
low during long showers with the element on) moved one element recovery out of the window, -14 %
(docs/metrics.md 6.1; -4 % now, -2 % with the true draws).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from navilink_etl.twin.inputs import fit_pull_down, pull_down_unit

from .twin_helpers import whatif_world

TZ = "America/Chicago"
START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 4
SEED = 25
WEEKS = DAYS / 7.0
BASE: dict[str, Any] = {"setpoint_f": 120.0, "mode": "energy_saver", "location": "garage"}
SCENARIOS: dict[str, dict[str, Any]] = {
    "setpoint +10": {"setpoint_f": 130.0},
    "heat pump only": {"mode": "heat_pump"},
    "electric": {"mode": "electric"},
}
TRUE_PULL_DOWN_K = 1.0  # sim/weather.py: the garage's steady pull-down



@pytest.fixture(scope="module")
def garage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return whatif_world(tmp_path_factory.mktemp("whatif_garage"), days=DAYS, seed=SEED, start=START, tz=TZ,
                        base=BASE, scenarios=SCENARIOS)


def _close(pred: float, true: float, rel: float, floor: float) -> bool:
    return abs(pred - true) <= max(rel * abs(true), floor)


def test_the_room_pull_down_is_fitted(garage: dict[str, Any]) -> None:
    r = garage["result"]
    assert r.inputs.cooling_k == pytest.approx(TRUE_PULL_DOWN_K, rel=0.15)
    # the garage sits near the lock-out: most heat comes from the elements, some from the heat pump
    assert r.backcast_measured["element_kwh"] > r.backcast_measured["heat_pump_kwh"] > 1.0


def test_backcast_meets_the_targets(garage: dict[str, Any]) -> None:
    r = garage["result"]
    for ref in (r.backcast_measured, garage["truth"]["A"]):
        assert _close(r.backcast_predicted["total_kwh"], ref["total_kwh"], 0.03, 0.0), (r.backcast_predicted, ref)
        assert _close(r.backcast_predicted["element_kwh"], ref["element_kwh"], 0.10, 0.3 * WEEKS)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_whatif_meets_the_targets(garage: dict[str, Any], name: str) -> None:
    sc = next(s for s in garage["result"].scenarios if s.name == name)
    p, t = sc.predicted, garage["truth"][name]
    assert _close(p["total_kwh"], t["total_kwh"], 0.05, 0.0), (p, t)
    assert _close(p["element_kwh"], t["element_kwh"], 0.15, 0.5 * WEEKS), (p, t)
    assert _close(p["runout_min"], t["runout_min"], 0.20, 10.0 * WEEKS), (p, t)
    assert _close(p["peak_kwh"], t["peak_kwh"], 0.10, 0.0), (p, t)


def test_fit_pull_down_recovers_a_known_pull_down_under_a_swinging_room() -> None:
    """A room swinging 10 K a day plus a 1.2 K pull-down while a compressor cycles: the fit finds
    the pull-down, not the room's swing (a 2-h spline cannot follow the 45-min steps)."""
    t = np.arange(0.0, 3 * 86400.0, 30.0)
    comp = (t % 14400.0) < 5400.0  # 90 min on in every 4 h
    room = 5.0 + 5.0 * np.sin(2 * np.pi * t / 86400.0)
    ambient = room - 1.2 * pull_down_unit(t, comp) + np.random.default_rng(1).normal(0, 0.05, len(t))
    k = fit_pull_down(t, np.round(ambient, 1), comp, pull_down_unit(t, comp))
    assert k is not None and k == pytest.approx(1.2, abs=0.05)
    assert fit_pull_down(t, room, np.zeros(len(t), dtype=bool), np.zeros(len(t))) is None  # never ran
