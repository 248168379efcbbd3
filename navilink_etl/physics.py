"""Unit and water constants: their one home, for Python and for the SQL macros generated here."""

from __future__ import annotations

F_PER_K = 1.8  # degF per K (a temperature difference)
F_AT_0_C = 32.0  # degF at 0 degC
WH_PER_L_K = 1.163  # water: heat per litre per K
WH_PER_GAL_F = 2.444  # water: 8.34 lb/gal x 1 BTU/(lb*degF) = 2.444 Wh per gallon per degF
WH_PER_GAL_K = WH_PER_GAL_F * F_PER_K
L_PER_GAL = 3.785


def c_to_f(c: float) -> float:
    return c * F_PER_K + F_AT_0_C


def f_to_c(f: float) -> float:
    return (f - F_AT_0_C) / F_PER_K


def sql_double(x: float) -> str:
    """A DuckDB DOUBLE literal that reads back as exactly ``x`` (a plain ``1.8`` is a DECIMAL)."""
    s = repr(float(x))
    return s if "e" in s else f"{s}e0"


def sql_macros() -> dict[str, str]:
    """DuckDB scalar macros (name -> ``(args) AS body``) for the constants above."""
    return {
        "c_to_f": f"(c) AS c * {sql_double(F_PER_K)} + {sql_double(F_AT_0_C)}",
        "f_to_c": f"(f) AS (f - {sql_double(F_AT_0_C)}) / {sql_double(F_PER_K)}",
        "k_to_f_delta": f"(k) AS k * {sql_double(F_PER_K)}",
        "wh_per_l_k": f"() AS {sql_double(WH_PER_L_K)}",
        "wh_per_gal_f": f"() AS {sql_double(WH_PER_GAL_F)}",
        "wh_per_gal_k": f"() AS {sql_double(WH_PER_GAL_K)}",
    }
