"""The heat-pump map (input power and COP vs tank and room temperature), its one home: the
simulator calls it and the warehouse's ``cop_map`` SQL macro is generated from the same table."""

from __future__ import annotations

from .physics import c_to_f, sql_double

HP_LOCKOUT_F = 37.0  # below this room temperature the heat pump is locked out (elements only)
COP_FLOOR = 1.0

# Per room temperature (degF): input W = a + b*T, COP = c + d*T, T = tank temperature in degF
# (65-gal class).
HP_MAP: tuple[tuple[float, float, float, float, float], ...] = (
    (50.0, 126.9, 2.215, 6.931, -0.03395),
    (67.5, 116.6, 2.467, 8.833, -0.04431),
    (95.0, 100.4, 2.863, 11.822, -0.06059),
)
# Outside the measured rooms, on purpose: below 50 degF the 50-67.5 degF segment is extrapolated
# linearly down to the lockout (the compressor never runs colder), above 95 degF the 95 degF line
# holds (no data says it keeps improving), and COP never drops below 1 (the straight lines would at
# very hot tanks; a heat pump is never worse than resistance heat).
AMBIENT_MIN_F = HP_LOCKOUT_F
AMBIENT_MAX_F = HP_MAP[-1][0]


def _segment(amb_f: float) -> int:
    """Index of the map row that starts the segment used at room ``amb_f`` (already clamped)."""
    for i in range(len(HP_MAP) - 2, 0, -1):
        if amb_f >= HP_MAP[i][0]:
            return i
    return 0


def map_coeffs(amb_f: float) -> tuple[float, float, float, float]:
    """(a, b, c, d) at room ``amb_f`` degF: linear in room temperature within [37, 95] degF."""
    amb_f = min(max(amb_f, AMBIENT_MIN_F), AMBIENT_MAX_F)
    lo, hi = HP_MAP[_segment(amb_f)], HP_MAP[_segment(amb_f) + 1]
    f = (amb_f - lo[0]) / (hi[0] - lo[0])
    return (lo[1] + f * (hi[1] - lo[1]), lo[2] + f * (hi[2] - lo[2]),
            lo[3] + f * (hi[3] - lo[3]), lo[4] + f * (hi[4] - lo[4]))


def cop_f(tank_f: float, ambient_f: float) -> float:
    _, _, c, d = map_coeffs(ambient_f)
    return max(COP_FLOOR, c + d * tank_f)


def cop(tank_c: float, ambient_c: float) -> float:
    """The map's COP at a tank and room temperature in degC."""
    return cop_f(c_to_f(tank_c), c_to_f(ambient_c))


def hp_performance(tank_c: float, ambient_c: float) -> tuple[float, float]:
    """(electrical input W incl. the fan, COP) with the compressor running."""
    a, b, c, d = map_coeffs(c_to_f(ambient_c))
    t_f = c_to_f(tank_c)
    return a + b * t_f, max(COP_FLOOR, c + d * t_f)


def sql_macros() -> dict[str, str]:
    """``cop_map_f(tank_f, ambient_f)`` and ``cop_map(tank_c, ambient_c)``: the same arithmetic as
    ``cop_f``/``cop`` in the same order, so Python and DuckDB agree to the last bit."""
    amb = f"least(greatest(ambient_f, {sql_double(AMBIENT_MIN_F)}), {sql_double(AMBIENT_MAX_F)})"
    arms = []
    for i in range(len(HP_MAP) - 1):
        lo, hi = HP_MAP[i], HP_MAP[i + 1]
        f = f"(a - {sql_double(lo[0])}) / {sql_double(hi[0] - lo[0])}"
        c = f"{sql_double(lo[3])} + {f} * {sql_double(hi[3] - lo[3])}"
        d = f"{sql_double(lo[4])} + {f} * {sql_double(hi[4] - lo[4])}"
        arms.append((lo[0], f"({c}) + ({d}) * tank_f"))
    case = "CASE " + " ".join(f"WHEN a >= {sql_double(start)} THEN {expr}" for start, expr in reversed(arms[1:]))
    case += f" ELSE {arms[0][1]} END"
    return {
        # the clamped room temperature goes to a second macro, so the clamp is written once
        "cop_map_line": f"(tank_f, a) AS greatest({sql_double(COP_FLOOR)}, {case})",
        "cop_map_f": f"(tank_f, ambient_f) AS cop_map_line(tank_f, {amb})",
        "cop_map": "(tank_c, ambient_c) AS cop_map_f(c_to_f(tank_c), c_to_f(ambient_c))",
        "hp_lockout_f": f"() AS {sql_double(HP_LOCKOUT_F)}",
    }
