"""The simulator's fast paths give the same floats as the plain definitions they replace
(bench/compare_sim.py checks whole runs against the code before a change)."""

from __future__ import annotations

import math

import numpy as np

from navilink_etl.cop import HP_MAP, hp_performance
from navilink_etl.protocol import DhwMode
from navilink_etl.sim.control import Heater
from navilink_etl.sim.draws import DoeDraws
from navilink_etl.sim.ledger import TruthLog
from navilink_etl.sim.plant import Tank, TankSpec, hp_performance_c
from navilink_etl.sim.weather import Weather


def test_prepared_map_equals_the_map_to_the_last_bit() -> None:
    rng = np.random.default_rng(3)
    knots_c = [(f - 32.0) / 1.8 for f, *_ in HP_MAP]
    rooms = [*rng.uniform(-10.0, 45.0, 400).tolist(), *knots_c, (37.0 - 32.0) / 1.8,
             *(math.nextafter(c, s) for c in knots_c for s in (-math.inf, math.inf))]
    tanks = [*rng.uniform(5.0, 75.0, 40).tolist(), 20.0, 65.5]
    for room in rooms:
        for tank in tanks:
            assert hp_performance_c(tank, room) == hp_performance(tank, room), (tank, room)


def test_standby_decay_follows_a_changed_ua() -> None:
    """The cached per-node decay is recomputed when a fault changes the tank's UA."""
    spec = TankSpec.for_model(65)
    a, b = Tank(spec, 50.0), Tank(spec, 50.0)
    assert a.idle_step(30.0, 20.0) == b.idle_step(30.0, 20.0)
    a._ua_node *= 3.0  # what FaultPlan does for ua_increase
    loss_a, loss_b = a.idle_step(30.0, 20.0), b.idle_step(30.0, 20.0)
    assert loss_a > 2.5 * loss_b


def test_nodes_stay_python_floats_through_idle_stretches_and_draws() -> None:
    """numpy scalars in the tank would give the same values, several times slower per step."""
    truth = TruthLog("x")
    h = Heater(spec=TankSpec.for_model(65), seed=1, start=0.0, weather=Weather(1, "garage"),
               mode=DhwMode.ENERGY_SAVER, initial_c=50.0, truth=truth, draws=DoeDraws("medium", 0.0))
    h.advance_to(86400.0)
    assert truth.steps and len({r[0] for r in truth.steps}) == len(truth.steps)
    state = [*h.tank.t, h.cooling_k, h.ambient_c, h.fan_hours, *h._macc]
    assert all(type(x) is float for x in state), {type(x).__name__ for x in state}
    assert all(type(x) is float for r in truth.steps for x in r[2:18])
