"""The what-if reads only its period's samples (twin/scope.py) and answers exactly as if it had
read the device's whole history through the warehouse's views."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from navilink_etl import warehouse
from navilink_etl.config import NaviLinkConfig
from navilink_etl.twin import whatif
from navilink_etl.twin.scope import SCOPE_CONTEXT, period_scope

DAYS = 12


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> NaviLinkConfig:
    from navilink_etl.sim.simulate import simulate

    root = tmp_path_factory.mktemp("scope")
    simulate(root, devices=1, days=DAYS, interval_s=60, seed=22, start=datetime(2026, 2, 2, tzinfo=UTC))
    config = NaviLinkConfig(data_dir=root, polling_interval=60)
    warehouse.refresh(config)
    return config


def test_the_scope_holds_only_the_period_and_its_context(cfg: NaviLinkConfig) -> None:
    con = warehouse.connect(cfg)
    try:
        mac = con.sql("select device from int_device_models").fetchall()[0][0]
        full = con.sql("select count(*), min(received_at) from stg_status").fetchall()[0]
        a, b = datetime(2026, 2, 10, tzinfo=UTC), datetime(2026, 2, 12, tzinfo=UTC)
        with period_scope(con, mac, a, b, warehouse.data_dir_of(cfg)):
            n, first, last = con.sql("select count(*), min(received_at), max(received_at) "
                                     "from stg_status").fetchall()[0]
            pieces = con.sql("select count(*) from int_intervals").fetchall()[0][0]
        after = con.sql("select count(*) from stg_status").fetchall()[0][0]
    finally:
        con.close()
    assert first >= a - SCOPE_CONTEXT and first > full[1]
    assert last < b + SCOPE_CONTEXT
    assert 0 < n < full[0] / 2 and pieces > 0
    assert after == full[0]  # the views are back once the block ends


def test_whatif_equals_the_unscoped_answer(cfg: NaviLinkConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    scoped = whatif(cfg, setpoint_f=110)
    assert scoped.first_day == date(2026, 2, 7)  # the last 7 days: history before them is left out
    monkeypatch.setattr(sys.modules["navilink_etl.twin.whatif"], "period_scope",
                        lambda *a, **k: contextlib.nullcontext())
    unscoped = whatif(cfg, setpoint_f=110)
    assert scoped.to_dict() == unscoped.to_dict()
    assert scoped.params == unscoped.params
    assert scoped.inputs is not None and unscoped.inputs is not None
    assert scoped.inputs.draws == unscoped.inputs.draws
    assert scoped.inputs.initial_c == unscoped.inputs.initial_c
    # the replay spun up from a full tank before the period: the scope's context holds it
    assert scoped.inputs.spin_from is not None and scoped.inputs.spin_from < scoped.inputs.t0
    assert scoped.inputs.spin_from == unscoped.inputs.spin_from


def test_a_store_without_the_period_gives_a_clear_error(cfg: NaviLinkConfig, tmp_path: Path) -> None:
    from navilink_etl.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="status samples"):
        whatif(cfg, start=date(2025, 6, 1), end=date(2025, 6, 7))
