"""AWS IoT's 50 subscriptions per MQTT connection: the fake broker refuses the 51st (SUBACK 0x80) and
the client spreads more devices over several connections; several accounts in one collector."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from navilink_etl.cloud.client import DEVICES_PER_CONNECTION, NaviLinkClient
from navilink_etl.collect.accounts import read_accounts_file
from navilink_etl.collect.logs import setup_logging
from navilink_etl.collect.run import run_collection
from navilink_etl.collect.store import scan_dataset
from navilink_etl.config import NaviLinkConfig
from navilink_etl.errors import ConfigurationError
from navilink_etl.sim.broker import MAX_SUBSCRIPTIONS_PER_CONNECTION
from navilink_etl.sim.cloud import FakeCloud

from .fakes_device import FixtureDevice

N_DEVICES = 110  # 49 + 49 + 12: three connections


def _devices(n: int) -> list[FixtureDevice]:
    return [FixtureDevice(mac=f"0478633a{i:04x}", home_seq=25000 + i) for i in range(n)]


def _config(fc: FakeCloud, **kw: Any) -> NaviLinkConfig:
    return NaviLinkConfig(**{**fc.client_overrides(), "request_timeout": 5.0, **kw})


async def test_broker_refuses_the_51st_subscription_on_one_connection() -> None:
    # one connection for everything, as before: the broker lets 50 filters through
    async with FakeCloud(_devices(60)) as fc, \
            NaviLinkClient(_config(fc), devices_per_connection=60) as client:
        await client.authenticate()
        await client.get_devices()
        await client.connect()
        assert len(client.sessions) == 1
        counts = fc.broker.subscription_counts()
        assert counts[client.client_id] == MAX_SUBSCRIPTIONS_PER_CONNECTION == 50
        assert fc.broker.refused_subscriptions == 61 - 50  # 60 devices + the reply prefix


async def test_client_spreads_devices_over_connections_and_every_device_answers() -> None:
    async with FakeCloud(_devices(N_DEVICES)) as fc, NaviLinkClient(_config(fc)) as client:
        await client.authenticate()
        devices = await client.get_devices()
        await client.connect()
        ids = client.client_ids
        assert len(ids) == 3 == len(set(ids)) and ids[0] == client.client_id
        assert sorted(fc.broker.connected_client_ids()) == sorted(ids)
        counts = fc.broker.subscription_counts()
        assert [counts[i] for i in ids] == [DEVICES_PER_CONNECTION + 1] * 2 + [N_DEVICES - 98 + 1]
        assert fc.broker.refused_subscriptions == 0
        # every device answers on its own connection; energy replies land on that connection's
        # client prefix
        statuses = await asyncio.gather(*(d.get_status() for d in devices))
        assert len({s.mac for s in statuses}) == N_DEVICES
        last = devices[-1]
        assert client.client_id_for(last.mac) == ids[2]
        days = await last.get_energy_usage(2025, [9])
        assert days
        # a dropped connection is rebuilt and resubscribed on its own
        await fc.broker.disconnect_all()
        await asyncio.sleep(0.1)
        again = await asyncio.gather(*(d.get_status() for d in (devices[0], devices[60], last)))
        assert [s.mac for s in again] == [devices[0].mac, devices[60].mac, last.mac]
        assert fc.broker.refused_subscriptions == 0


# --- several accounts ---------------------------------------------------------------------------


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_accounts_file_forms_and_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    toml = _write(tmp_path / "a.toml", '[[accounts]]\nemail = "a@x.io"\npassword = "pw-alpha-123"\n'
                  '[[accounts]]\nemail = "b@x.io"\npassword = "pw-bravo-456"\n')
    assert [a.email for a in read_accounts_file(toml)] == ["a@x.io", "b@x.io"]
    assert "pw-alpha" not in repr(read_accounts_file(toml))
    js = _write(tmp_path / "a.json", json.dumps([{"email": "c@x.io", "password": "pw-charlie-789"}]), 0o644)
    with caplog.at_level(logging.WARNING):
        assert read_accounts_file(js)[0].password.get_secret_value() == "pw-charlie-789"
    assert "chmod 600" in caplog.text and str(js) in caplog.text
    bad = {
        "no password": '[[accounts]]\nemail = "d@x.io"\n',
        "no usable 'email'": '[[accounts]]\npassword = "pw-delta-000"\n',
        "repeats": '[[accounts]]\nemail="e@x.io"\npassword="pw-echo-111"\n[[accounts]]\nemail="E@x.io"\npassword="pw-x"\n',
        "not valid TOML": 'accounts = [ {email = "f@x.io", password = "pw-foxtrot-222" ',
        "lists no accounts": "title = 'nothing'\n",
    }
    for why, text in bad.items():
        with pytest.raises(ConfigurationError) as e:
            read_accounts_file(_write(tmp_path / "bad.toml", text))
        msg = str(e.value)
        assert "NAVILINK_ACCOUNTS_FILE" in msg and why.split()[0] in msg and "fix:" in msg
        assert "pw-" not in msg  # never a password, not even a fragment of the file
    with pytest.raises(ConfigurationError) as e:
        NaviLinkConfig.from_environment(accounts_file=tmp_path / "missing.toml")
    assert "NAVILINK_ACCOUNTS_FILE" in str(e.value)


async def test_one_collector_serves_several_accounts_and_logs_no_secret(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pw = {"alpha@fleet.test": "Alpha-Secret-9137", "bravo@fleet.test": "Bravo-Secret-5521"}
    devs = _devices(4)
    owners = {d.mac: ("alpha@fleet.test", "bravo@fleet.test")[i % 2] for i, d in enumerate(devs)}
    async with FakeCloud(devs, accounts=pw, owners=owners, speed=600.0) as fc:
        accounts = _write(tmp_path / "accounts.toml", "".join(
            f'[[accounts]]\nemail = "{e}"\npassword = "{p}"\n' for e, p in pw.items()))
        over = fc.client_overrides()
        over.pop("email"), over.pop("password")
        cfg = NaviLinkConfig(data_dir=tmp_path / "data", timezone="UTC", refresh_minutes=0,
                             accounts_file=accounts, **over)
        teardown = setup_logging(tmp_path / "data", "DEBUG")
        with caplog.at_level(logging.DEBUG):
            try:
                stats = await run_collection(cfg, interval=300, duration_min=0.06, clock=fc.clock,
                                             mode="embedded", status_line=False)
            finally:
                teardown()
        issued = fc.tokens.issued_secrets()
    assert stats.fatal is None
    assert sorted(stats.devices) == sorted(d.mac for d in devs)  # both accounts' devices
    st = scan_dataset(tmp_path / "data", "status").collect()
    assert sorted(set(st["device"])) == sorted(owners)
    assert fc.rest is not None and fc.rest.calls["user/sign-in"] >= 2
    text = caplog.text + (tmp_path / "data" / "logs" / "collector.log").read_text() + stats.summary()
    for secret in [*pw.values(), *issued]:
        assert secret not in text


async def test_a_rejected_account_is_named_without_its_password(tmp_path: Path) -> None:
    pw = {"alpha@fleet.test": "Alpha-Secret-9137", "bravo@fleet.test": "Bravo-Secret-5521"}
    async with FakeCloud(_devices(2), accounts=pw, speed=600.0) as fc:
        wrong = "Wrong-Secret-0000"
        accounts = _write(tmp_path / "accounts.json", json.dumps(
            [{"email": "alpha@fleet.test", "password": pw["alpha@fleet.test"]},
             {"email": "bravo@fleet.test", "password": wrong}]))
        over = fc.client_overrides()
        over.pop("email"), over.pop("password")
        cfg = NaviLinkConfig(data_dir=tmp_path / "data", timezone="UTC", refresh_minutes=0,
                             accounts_file=accounts, **over)
        stats = await run_collection(cfg, interval=300, duration_min=0.05, clock=fc.clock,
                                     mode="embedded", status_line=False)
    assert stats.fatal is not None and "bravo@fleet.test" in stats.fatal
    assert "NAVILINK_ACCOUNTS_FILE" in stats.fatal and wrong not in stats.fatal
