"""No password, token or AWS key reaches logs, data files, exports or the console."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from navilink_etl.collect.export import export
from navilink_etl.collect.logs import setup_logging
from navilink_etl.collect.run import run_collection
from navilink_etl.config import NaviLinkConfig
from navilink_etl.sim.cloud import FakeCloud

PASSWORD = "Corr3ct-Horse-Battery-Staple"


def _leaks(blob: bytes, secrets: set[str]) -> list[str]:
    return [s[:6] + "..." for s in secrets if s.encode() in blob]


async def test_no_secret_in_logs_data_or_exports(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "data"
    async with FakeCloud(n_devices=2, speed=600.0, accounts={"owner@example.com": PASSWORD}) as fc:
        over = fc.client_overrides() | {"email": "owner@example.com", "password": SecretStr(PASSWORD)}
        cfg = NaviLinkConfig(data_dir=data, timezone="UTC", log_level="DEBUG").model_copy(update=over)
        teardown = setup_logging(data, "DEBUG", debug=True)
        try:
            task = asyncio.create_task(run_collection(cfg, interval=60, duration_min=0.25, clock=fc.clock,
                                                      mode="embedded", status_line=False))
            await asyncio.sleep(3)
            await fc.expire_credentials()  # the client must re-sign-in: more secrets in play
            stats = await task
        finally:
            teardown()
        secrets = fc.tokens.issued_secrets() | {PASSWORD}
    assert stats.fatal is None and sum(stats.samples.values()) > 0
    # two sign-ins (the second after expiry): password + 2 x (id, access, refresh, key id, secret, session)
    assert len(secrets) >= 11

    # every file the collector wrote: Parquet, spool, logs, TOU plans
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any(p.name.endswith(".log") for p in files)
    for p in files:
        assert not _leaks(p.read_bytes(), secrets), f"secret found in {p}"
    # exports
    for fmt in ("csv", "jsonl", "parquet"):
        out = export(cfg, fmt, tmp_path / f"out.{fmt}")
        assert not _leaks(out.read_bytes(), secrets), fmt
    # logs at DEBUG, console output, reprs
    text = "\n".join(r.getMessage() for r in caplog.records) + capsys.readouterr().out
    assert "owner@example.com" in text or caplog.records  # the run did log
    assert not _leaks(text.encode(), secrets)
    assert PASSWORD not in repr(cfg) and PASSWORD not in str(cfg)
