"""One decoder, two languages: every captured payload and generated ones give the same SI values
through ``DeviceStatus`` as through the ``stg_status`` view over Parquet written by the real store."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from navilink_etl import warehouse
from navilink_etl.collect.store import Store
from navilink_etl.config import NaviLinkConfig
from navilink_etl.fields import FIELDS, STG_STATUS_COLUMNS, Field
from navilink_etl.status import UNKNOWN_MARKERS, DeviceStatus, parse_status, status_row

from .conftest import CAPTURE_DIR, load_capture

MAC = "aabbccddeeff"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EXAMPLES = int(os.environ.get("PARITY_EXAMPLES", "4"))  # each example builds a warehouse


def _message(status: Mapping[str, Any], i: int) -> bytes:
    return orjson.dumps({"protocolVersion": 2, "clientID": "parity", "sessionID": str(i),
                         "response": {"deviceType": 52, "macAddress": MAC, "status": status}})


def _through_both(data_dir: Path, statuses: Iterable[Mapping[str, Any]]) -> list[tuple[DeviceStatus, dict]]:
    """Parse each status message, store the rows (spool -> Parquet), read stg_status back."""
    parsed, rows = [], []
    for i, status in enumerate(statuses):
        at = T0 + timedelta(seconds=30 * i)
        stat = parse_status(_message(status, i), received_at=at)
        parsed.append(stat)
        rows.append(status_row(stat, received_at=at, source="parity"))
    with Store(data_dir) as store:
        store.append_status(rows)
        store.flush()
    con = warehouse.connect(NaviLinkConfig(data_dir=data_dir, polling_interval=30, timezone="UTC"))
    try:
        rel = con.sql(f"select {', '.join(STG_STATUS_COLUMNS)} from stg_status order by received_at")
        got = [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]
    finally:
        con.close()
    assert len(got) == len(parsed)
    return list(zip(parsed, got, strict=True))


def _assert_same(pairs: list[tuple[DeviceStatus, dict]]) -> None:
    for i, (stat, sql_row) in enumerate(pairs):
        py = stat.si()
        for col in STG_STATUS_COLUMNS:
            # exact: the same IEEE operations on the same integers, in the same order
            assert py[col] == sql_row[col], (i, col, py[col], sql_row[col])
            assert (py[col] is None) == (sql_row[col] is None), (i, col)


def test_captured_payloads_decode_the_same_both_ways(tmp_path: Path) -> None:
    names = ["status_response_heatpump_running.json",
             *sorted({p.name for p in CAPTURE_DIR.glob("status_*.json")} - {"status_response_heatpump_running.json"})]
    statuses = [load_capture(n)["response"]["status"] for n in names]
    newer = dict(statuses[0], heatMinOpTemperature=81, compUse=0, ambientTemperature=-123)
    pairs = _through_both(tmp_path, [*statuses, newer])
    _assert_same(pairs)
    assert pairs[-1][1]["min_setpoint_c"] == 40.5 and pairs[-1][1]["compressor_on"] is None
    assert pairs[0][1]["tank_upper_c"] == 58.6 and pairs[0][1]["stored_wh"] == 5928.0


def _value(f: Field) -> st.SearchStrategy[int | None]:
    edge = st.sampled_from((f.lo, f.hi, 0, 1, 2) if f.lo <= 0 else (f.lo, f.hi))
    values: st.SearchStrategy[int | None] = st.integers(f.lo, f.hi) | edge.filter(lambda v: f.lo <= v <= f.hi)
    if not f.required:  # an optional key may be null or hold an "unknown" marker
        markers = sorted(m for m in UNKNOWN_MARKERS if not f.lo <= m <= f.hi)
        values = values | st.none() | st.sampled_from(markers)
    return values


STATUS = st.fixed_dictionaries(
    {f.key: _value(f) for f in FIELDS if f.required},
    optional={f.key: _value(f) for f in FIELDS if not f.required},
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(statuses=st.lists(STATUS, min_size=1, max_size=40))
def test_generated_payloads_decode_the_same_both_ways(statuses: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _assert_same(_through_both(Path(tmp), statuses))
