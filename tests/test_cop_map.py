"""The heat-pump map: the Python table (used by the simulator) and the warehouse's generated DuckDB
macros agree on a grid of tank and room temperatures, and behave as documented outside the data."""

from __future__ import annotations

import duckdb
import pytest

from navilink_etl import cop, physics, warehouse
from navilink_etl.sim.plant import hp_performance

TANK_C = [x / 2 for x in range(-20, 181, 7)]  # -10..90 degC
AMBIENT_C = [x / 4 for x in range(-80, 201, 3)]  # -20..50 degC: below the lockout to a hot attic


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    for name, body in warehouse.MACROS.items():  # exactly what the warehouse installs
        c.execute(f"CREATE MACRO {name}{body}")
    return c


def test_python_and_duckdb_agree_to_the_bit_on_a_grid(con: duckdb.DuckDBPyConnection) -> None:
    grid = [(t, a) for t in TANK_C for a in AMBIENT_C]
    con.execute("CREATE TEMP TABLE grid (tank_c DOUBLE, ambient_c DOUBLE)")
    con.executemany("INSERT INTO grid VALUES (?, ?)", grid)
    got = con.sql("select tank_c, ambient_c, cop_map(tank_c, ambient_c), "
                  "cop_map_f(c_to_f(tank_c), c_to_f(ambient_c)) from grid").fetchall()
    assert len(got) == len(grid) > 2000
    for t, a, sql_cop, sql_cop_f in got:
        assert sql_cop == sql_cop_f == cop.cop(t, a), (t, a)


def test_the_simulator_uses_the_same_map() -> None:
    for t in TANK_C:
        for a in AMBIENT_C:
            _, sim_cop = hp_performance(t, a)
            assert sim_cop == cop.cop(t, a)


def test_the_map_reproduces_the_reference_lines_at_the_measured_rooms() -> None:
    for amb_f, _pa, _pb, c, d in cop.HP_MAP:
        for tank_f in (100.0, 120.0, 140.0):
            assert cop.cop_f(tank_f, amb_f) == pytest.approx(c + d * tank_f, rel=1e-12)
    # input power too (the simulator's electrical draw)
    p, _ = hp_performance(physics.f_to_c(120.0), physics.f_to_c(67.5))
    assert p == pytest.approx(116.6 + 2.467 * 120.0, rel=1e-12)


def test_below_50f_extrapolates_down_to_the_lockout_then_holds() -> None:
    tank_f = 120.0
    at = {a: cop.cop_f(tank_f, a) for a in (30.0, 37.0, 43.5, 50.0, 58.75)}
    # linear in room temperature across 37..67.5 degF: equal steps give equal differences
    assert at[43.5] - at[37.0] == pytest.approx(at[50.0] - at[43.5], rel=1e-9)
    assert at[50.0] - at[43.5] == pytest.approx((at[58.75] - at[50.0]) * 6.5 / 8.75, rel=1e-9)
    assert at[37.0] < at[50.0]  # colder room, worse COP (not clamped at 50 degF any more)
    assert at[30.0] == at[37.0] == cop.cop_f(tank_f, -40.0)  # below the lockout: held


def test_above_95f_holds_the_95f_line() -> None:
    for tank_f in (90.0, 125.0):
        assert cop.cop_f(tank_f, 110.0) == cop.cop_f(tank_f, 95.0) == pytest.approx(11.822 - 0.06059 * tank_f)


def test_cop_never_drops_below_one(con: duckdb.DuckDBPyConnection) -> None:
    assert cop.cop_f(250.0, 37.0) == 1.0
    assert con.execute("select cop_map_f(250.0, 37.0)").fetchone() == (1.0,)
    assert cop.cop_f(140.0, 37.0) > 1.0


def test_unit_macros_match_the_python_constants(con: duckdb.DuckDBPyConnection) -> None:
    row = con.execute("select c_to_f(58.6), f_to_c(137.48), k_to_f_delta(5), wh_per_gal_f(), "
                      "wh_per_gal_k(), wh_per_l_k(), c_to_f(58)").fetchone()
    assert row == (physics.c_to_f(58.6), physics.f_to_c(137.48), 5 * physics.F_PER_K,
                   physics.WH_PER_GAL_F, physics.WH_PER_GAL_K, physics.WH_PER_L_K, physics.c_to_f(58))
    assert con.execute("select typeof(c_to_f(58))").fetchone() == ("DOUBLE",)  # integers too, not DECIMAL
    assert abs(physics.WH_PER_GAL_K / (physics.L_PER_GAL * physics.WH_PER_L_K) - 1) < 2e-3  # 8.34 lb/gal
