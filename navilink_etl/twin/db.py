"""Small read helpers over a DuckDB connection (each fetches its whole result, as DuckDB 2
requires before the next statement)."""

from __future__ import annotations

from typing import Any


def rows(con: Any, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    return list(con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall())


def one(con: Any, sql: str, params: Any = None) -> tuple[Any, ...] | None:
    got = rows(con, sql, params)
    return got[0] if got else None


def dicts(con: Any, sql: str, params: Any = None) -> list[dict[str, Any]]:
    rel = con.sql(sql, params=params)
    names = list(rel.columns)
    return [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
