"""One device's period without recomputing its whole history.

``stg_status`` and the per-sample views the twin reads (``int_intervals``, ``int_energy_slots``)
are views: read through the published warehouse they deduplicate and window every sample the
device ever sent, whatever the query's filter (a window needs the rows before), so a week's
what-if on a heater with a year of data cost ~20 s of SQL. ``period_scope`` shadows them, for
the duration of a ``with`` block, with temporary tables holding only that device's samples from
``SCOPE_CONTEXT`` before the period to ``SCOPE_AFTER`` past its end (unqualified names resolve
to the temporary catalog first, as the refresh's batches rely on). Given the store, only the
files of those days are read (the store keeps one folder per device and UTC day). The context
covers every look-back the per-sample models have (the longest is the 3 h outlet estimate), so
the period's rows are the same as the full views' (``tests/test_whatif_scope.py``). Filtering on
``received_at`` before ``stg_status``'s deduplication is exact: duplicates share their time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

from .. import warehouse

SCOPE_CONTEXT = timedelta(days=3)  # samples read before the period (look-backs, a spin-up)
SCOPE_AFTER = timedelta(hours=6)  # ... and after it (the last sample's interval end)
SHADOWED = ("stg_status", "int_intervals", "int_energy_slots")


def _period_files(data_dir: warehouse.DataDir, device: str, lo: datetime, hi: datetime) -> list[str]:
    """The device's status files whose UTC day folder can hold a sample in [lo, hi): only the
    device's own folder is listed (the store writes ``status/device=<mac>/date=<day>/``)."""
    loc = warehouse.as_location(data_dir)
    first, last = (lo - timedelta(days=1)).date(), (hi + timedelta(days=1)).date()
    out = []
    for full in loc.find(loc.join("status", f"device={device}")):
        rel = loc.relative(full)
        day = next((p[5:] for p in rel.split("/") if p.startswith("date=")), None)
        try:
            keep = day is None or first <= date.fromisoformat(day) <= last
        except ValueError:
            keep = True  # not a day folder: cannot be ruled out
        if keep:
            out.append(warehouse.file_url(data_dir, rel))
    return sorted(out)


@contextmanager
def period_scope(con: Any, device: str, start: datetime, end: datetime,
                 data_dir: warehouse.DataDir | None = None) -> Iterator[None]:
    """Within the block, ``con`` sees ``device``'s samples from ``start - SCOPE_CONTEXT`` to
    ``end + SCOPE_AFTER`` only, through the usual names (``start``/``end``: aware datetimes).
    ``data_dir``: the store, to read only the period's files (else the whole source is filtered)."""
    cat = warehouse.catalog(con)
    made: list[str] = []
    lo, hi = start - SCOPE_CONTEXT, end + SCOPE_AFTER
    glob, dataset = warehouse.SOURCES["src_status"]
    try:
        if data_dir is not None:
            files = _period_files(data_dir, device, lo, hi)
            con.execute("create or replace temp view src_status as "
                        + warehouse.source_sql(data_dir, glob, dataset, files=files))
        con.execute(f"create or replace temp table stg_status as select * from {cat}.main.stg_status "
                    "where device = $d and received_at >= $a and received_at < $b",
                    {"d": device, "a": lo, "b": hi})
        made.append("stg_status")
        for name in SHADOWED[1:]:
            con.execute(f"create or replace temp table {name} as select * from {cat}.main.{name}")
            made.append(name)
        yield
    finally:
        for name in reversed(made):
            con.execute(f"drop table if exists temp.main.{name}")
        if data_dir is not None:
            con.execute("create or replace temp view src_status as "
                        + warehouse.source_sql(data_dir, glob, dataset))
