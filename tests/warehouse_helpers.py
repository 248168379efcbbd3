"""The tests' way into a simulated warehouse: refresh it, open it, read rows as dicts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb

from navilink_etl import warehouse
from navilink_etl.config import NaviLinkConfig


def refreshed(cfg: NaviLinkConfig) -> Iterator[duckdb.DuckDBPyConnection]:
    """Refresh the warehouse of ``cfg``, yield a read connection, close it (a fixture's body)."""
    warehouse.refresh(cfg)
    con = warehouse.connect(cfg)
    yield con
    con.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    return con.sql(sql).pl().to_dicts()
