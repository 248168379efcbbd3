"""Modes are named once (protocol.py's enums): DuckDB's macros name every number as Python does."""

from __future__ import annotations

import duckdb
import pytest

from navilink_etl import warehouse
from navilink_etl.protocol import DhwMode, OperationMode, mode_name


@pytest.mark.parametrize(("macro", "enum"), [("operation_mode_name", OperationMode),
                                             ("dhw_mode_name", DhwMode)])
def test_sql_mode_names_equal_python(macro: str, enum: type) -> None:
    con = duckdb.connect()
    for name, body in warehouse.MACROS.items():
        con.execute(f"CREATE MACRO {name}{body}")
    values = [*(m.value for m in enum), 33, 255, None]
    got = [con.execute(f"SELECT {macro}(?::INTEGER)", [v]).fetchall()[0][0] for v in values]
    assert got == [mode_name(enum, v) for v in values]
    assert mode_name(enum, 33) == "unknown_33" and mode_name(enum, None) is None
