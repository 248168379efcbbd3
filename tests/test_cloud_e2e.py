"""The client end to end against the offline fake cloud (REST + wss broker + device agents)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from navilink_etl import (
    DeviceOfflineError,
    DeviceStatus,
    DhwMode,
    InvalidCredentialsError,
    NaviLinkClient,
    NaviLinkConfig,
    NaviLinkConnectionError,
    PayloadError,
    RequestTimeoutError,
    ValidationError,
)
from navilink_etl.protocol import Command, gateway
from navilink_etl.sim.cloud import FakeCloud
from navilink_etl.sim.device import SimulatedDevice
from navilink_etl.status import parse_message


def _devices(n: int) -> list[SimulatedDevice]:
    """Simulated heaters, alternating the two firmware profiles."""
    start = datetime.now(UTC)
    return [SimulatedDevice(f"04786332fc{i:02x}", seed=i, start=start, home_seq=25004 + i,
                            firmware=("2025-09", "2025-10")[i % 2]) for i in range(n)]


@pytest.fixture
async def cloud() -> AsyncIterator[FakeCloud]:
    async with FakeCloud(devices=_devices(2), latency_s=0.0) as fc:
        yield fc


def _config(fc: FakeCloud, **kw: Any) -> NaviLinkConfig:
    return NaviLinkConfig(**{**fc.client_overrides(), "request_timeout": 5.0, **kw})


async def _until(pred: Callable[[], bool], timeout: float = 20.0) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


async def test_original_library_snippet_runs_unchanged(cloud: FakeCloud, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    for k, v in cloud.env().items():
        monkeypatch.setenv(k, v)
    # --- the original library's example, verbatim --------------------------------------------
    config = NaviLinkConfig.from_environment()
    async with NaviLinkClient(config=config) as client:
        await client.authenticate(config.email, config.password)
        devices = await client.get_devices()
        device = devices[0]
        status = await device.get_status()
        print(f"Tank Level: {status.dhw_charge_per}%"); print(f"Temperature: {status.dhw_temperature}°F"); print(f"Power Usage: {status.current_inst_power}W")  # noqa: E702
        await device.set_temperature(120); await device.set_dhw_mode(1)  # noqa: E702
        # ------------------------------------------------------------------------------------------
        after = await device.get_status()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"Tank Level: {status.dhw_charge_per}%" and status.dhw_charge_per is not None
    assert out[1].startswith("Temperature: ") and 50 < status.dhw_temperature < 170  # type: ignore[operator]
    assert out[2] == f"Power Usage: {status.current_inst_power}W"
    assert after.raw["dhwTemperatureSetting"] == 98  # 120 degF -> 48.9 degC -> 98 half-degC
    assert after.dhw_mode is DhwMode.HEAT_PUMP
    assert abs(after.dhw_temperature_setting - 120) < 0.6  # type: ignore[operator]


async def test_status_reply_listeners_and_connection_events(cloud: FakeCloud) -> None:
    messages: list[tuple[str, bytes, datetime]] = []
    events: list[tuple[str, str]] = []
    async with NaviLinkClient(config=_config(cloud)) as client:
        threads: set[int] = set()

        def record(t: str, p: bytes, at: datetime) -> None:
            threads.add(threading.get_ident())
            messages.append((t, p, at))

        remove = client.add_message_listener(record)

        def broken(topic: str, payload: bytes, at: datetime) -> None:
            raise RuntimeError("listener bug")

        client.add_message_listener(broken)  # must not break dispatch
        client.add_connection_listener(lambda e, d: events.append((e, d)))
        await client.authenticate()
        devices = await client.get_devices()
        assert len(devices) == 2 and all(d.online for d in devices)
        assert not client.connected
        dev = devices[0]
        st = await dev.get_status()
        assert isinstance(st, DeviceStatus) and st.kind == "reply" and st.mac == dev.mac
        assert st.command == Command.STATUS and st.session_id and st.session_id.isdigit()
        assert st.received_at is not None and st.received_at.tzinfo is UTC
        assert client.connected and events[0][0] == "connected"
        await _until(lambda: any(parse_ok(p, st.session_id) for _, p, _ in messages))
        # every message reaches the listener, including our own request echoed by G/#
        assert any(t == f"{gateway(dev.mac)}/st" for t, _, _ in messages)
        assert all(at.tzinfo is UTC for _, _, at in messages)
        assert threads == {threading.get_ident()}  # called on the event loop, not SDK threads
        # a second device's replies come to the same session
        st2 = await devices[1].get_status()
        assert st2.mac == devices[1].mac and st2.session_id != st.session_id
        remove()
        n = len(messages)
        await dev.get_status()
        await asyncio.sleep(0.2)
        assert len(messages) == n


def parse_ok(payload: bytes, session_id: str | None) -> bool:
    try:
        return parse_message(payload).session_id == session_id
    except Exception:
        return False


async def test_concurrent_requests_with_latency_get_their_own_replies(cloud: FakeCloud) -> None:
    cloud.set_latency((0.05, 0.4))  # replies come back out of order
    async with NaviLinkClient(config=_config(cloud)) as client:
        await client.authenticate()
        a, b = await client.get_devices()
        results = await asyncio.gather(*(d.get_status() for d in (a, b, a, b, a, b)),
                                       a.set_dhw_mode(DhwMode.HIGH_DEMAND), b.get_feature())
        statuses = results[:6]
        assert [s.mac for s in statuses] == [a.mac, b.mac] * 3
        assert all(s.kind == "reply" for s in statuses)
        assert len({s.session_id for s in statuses}) == 6
        assert results[6].command == Command.DHW_MODE and results[6].mac == a.mac
        assert results[7].raw.get("controllerSerialNumber")


async def test_controls_return_their_echo_and_validate_first(cloud: FakeCloud) -> None:
    async with NaviLinkClient(config=_config(cloud)) as client:
        await client.authenticate()
        dev = (await client.get_devices())[0]
        feature = await dev.get_feature()
        assert feature.controller_serial
        lo, hi = dev.temperature_range_f()
        assert 95 <= lo < hi <= 151

        echo = await dev.set_temperature(130)
        assert echo.kind == "control_echo" and echo.command == Command.DHW_TEMPERATURE
        assert echo.raw["dhwTemperatureSetting"] == 109  # 130 degF = 54.4 degC
        echo = await dev.set_dhw_mode(DhwMode.ENERGY_SAVER)
        assert echo.command == Command.DHW_MODE and echo.dhw_mode is DhwMode.ENERGY_SAVER
        assert (await dev.set_dhw_mode("high_demand")).dhw_mode is DhwMode.HIGH_DEMAND
        assert (await dev.set_operation_mode(2)).dhw_mode is DhwMode.ELECTRIC
        echo = await dev.set_dhw_mode("vacation", vacation_days=3)
        assert echo.dhw_mode is DhwMode.VACATION and echo.raw["vacationDaySetting"] == 3
        await dev.set_dhw_mode(1)
        off = await dev.power_off()
        assert off.command == Command.POWER_OFF and off.raw["dhwOperationSetting"] == 6
        on = await dev.turn_on()
        assert on.command == Command.POWER_ON and on.dhw_mode is DhwMode.HEAT_PUMP
        assert (await dev.turn_off()).raw["dhwOperationSetting"] == 6
        await dev.power_on()

        replies = cloud.stats()["replies"][dev.mac]
        for bad in (lambda: dev.set_temperature(90), lambda: dev.set_temperature(160),
                    lambda: dev.set_temperature(float("nan")), lambda: dev.set_dhw_mode(6),
                    lambda: dev.set_dhw_mode("turbo"), lambda: dev.set_dhw_mode("vacation"),
                    lambda: dev.set_dhw_mode(5, vacation_days=31), lambda: dev.set_dhw_mode(1, 3)):
            with pytest.raises(ValidationError):
                await bad()
        assert cloud.stats()["replies"][dev.mac] == replies  # nothing was sent


async def test_energy_history_tou_info_and_firmware(cloud: FakeCloud) -> None:
    async with NaviLinkClient(config=_config(cloud)) as client:
        await client.authenticate()
        dev = (await client.get_devices())[0]
        days = await dev.get_energy_usage(2026, [2, 3])
        assert [(d.month, d.day) for d in days][:1] == [(2, 1)]
        assert len(days) == 28 + 31 and all(d.year == 2026 for d in days)
        assert all(d.hp_wh >= 0 and d.he_wh >= 0 for d in days)
        tou = await dev.get_tou()
        assert tou["touInfo"]["controllerId"] == dev.feature.controller_serial  # type: ignore[union-attr]
        info = await dev.get_info()
        assert "macAddress" not in info["deviceInfo"]  # the wire omits it ...
        assert dev.info["macAddress"] == dev.mac and dev.info["installType"] == "R"  # ... we keep it
        fw = await dev.get_firmware()
        assert len(fw) == 4 and all(f["macAddress"] == dev.mac for f in fw)
        with pytest.raises(ValidationError):
            await dev.get_energy_usage(2026, [13])


async def test_offline_device_times_out_as_device_offline(cloud: FakeCloud) -> None:
    async with NaviLinkClient(config=_config(cloud, request_timeout=1.0)) as client:
        await client.authenticate()
        macs = [d.mac for d in await client.get_devices()]
        cloud.set_offline(macs[1])
        online, offline = await client.get_devices()
        assert online.online and not offline.online
        with pytest.raises(DeviceOfflineError) as ei:
            await offline.get_status()
        assert "offline" in str(ei.value) and offline.mac in str(ei.value)
        assert (await online.get_status()).mac == online.mac  # the other device is unaffected


async def test_malformed_replies_reach_listeners_and_fail_only_their_request(cloud: FakeCloud) -> None:
    payloads: list[bytes] = []
    async with NaviLinkClient(config=_config(cloud, request_timeout=1.0)) as client:
        client.add_message_listener(lambda t, p, at: payloads.append(p))
        await client.authenticate()
        dev = (await client.get_devices())[0]
        cloud.malformed_next(dev.mac, 2)
        with pytest.raises(RequestTimeoutError):  # truncated JSON: nothing to correlate
            await dev.get_status()
        assert any(not parse_ok(p, None) and p.startswith(b"{") and not p.endswith(b"}") for p in payloads)
        with pytest.raises(PayloadError):  # right sessionID, but a non-integer field
            await dev.get_status()
        st = await dev.get_status()  # and the session carries on
        assert st.kind == "reply"


async def test_token_refresh_and_credential_renewal_keep_everything_working(cloud: FakeCloud) -> None:
    events: list[str] = []
    async with NaviLinkClient(config=_config(cloud)) as client:
        client.add_connection_listener(lambda e, d: events.append(e))
        await client.authenticate()
        dev = (await client.get_devices())[0]
        await dev.get_status()
        client.mqtt.resume_grace_s = 0.5
        assert cloud.rest is not None
        # the JWT expires server-side: one refresh on the 401, then the call succeeds
        await cloud.expire_credentials(rest=True, aws=False)
        assert len(await client.get_devices()) == 2
        assert cloud.rest.calls["auth/refresh"] == 1 and cloud.rest.calls["user/sign-in"] == 1
        # the AWS keys expire: the broker drops us and refuses them; a full sign-in rebuilds it
        await cloud.expire_credentials(rest=False, aws=True)
        await _until(lambda: "resubscribed" in events[events.index("credentials_renewed"):]
                     if "credentials_renewed" in events else False)
        assert cloud.rest.calls["user/sign-in"] == 2
        st = await dev.get_status()
        assert st.mac == dev.mac and client.connected
        assert cloud.broker.connected_client_ids() == [client.client_id]  # old connection closed
        assert events.index("interrupted") < events.index("credentials_renewed")


async def test_aws_credentials_are_renewed_before_they_expire() -> None:
    events: list[str] = []
    async with FakeCloud(devices=_devices(1), authorization_expires_in=6) as fc, \
            NaviLinkClient(config=_config(fc)) as client:
        client.add_connection_listener(lambda e, d: events.append(e))
        await client.authenticate()
        dev = (await client.get_devices())[0]
        await dev.get_status()
        first_key = client.auth.tokens.access_key_id  # type: ignore[union-attr]
        # renewal is due 3 s before expiry (half the life when that is under 5 min)
        await _until(lambda: "resubscribed" in events, timeout=10)
        assert events[:3] == ["connected", "credentials_renewed", "connected"]
        assert "interrupted" not in events  # renewed before the broker dropped the old keys
        assert client.auth.tokens.access_key_id != first_key  # type: ignore[union-attr]
        assert (await dev.get_status()).mac == dev.mac
        assert fc.broker.connected_client_ids() == [client.client_id]


async def test_reconnects_after_forced_disconnect_and_broker_outage(cloud: FakeCloud) -> None:
    events: list[str] = []
    async with NaviLinkClient(config=_config(cloud)) as client:
        client.add_connection_listener(lambda e, d: events.append(e))
        await client.authenticate()
        dev = (await client.get_devices())[0]
        await dev.get_status()
        client_id = client.client_id
        assert await cloud.force_disconnect() == 1
        await _until(lambda: "interrupted" in events)
        # a request made while down waits for the reconnect *and* the resubscription, then its
        # reply arrives (publishing before resubscribing would lose it)
        assert (await dev.get_status()).mac == dev.mac
        assert "resubscribed" in events and client.connected
        events.clear()
        client.mqtt.resume_grace_s = 0.5
        await cloud.broker_down(2.0)
        await _until(lambda: "interrupted" in events)
        await cloud.broker.wait_up()
        await _until(lambda: client.connected and "resubscribed" in events, timeout=30)
        assert (await dev.get_status()).mac == dev.mac
        assert client.client_id == client_id and cloud.broker.connected_client_ids() == [client_id]


async def test_broker_down_at_start_fails_fast_then_recovers_in_background(cloud: FakeCloud) -> None:
    events: list[str] = []
    async with NaviLinkClient(config=_config(cloud, request_timeout=1.0)) as client:
        client.add_connection_listener(lambda e, d: events.append(e))
        await client.authenticate()
        dev = (await client.get_devices())[0]
        await cloud.broker_down(2.0)
        with pytest.raises(NaviLinkConnectionError):
            await client.connect()
        with pytest.raises(NaviLinkConnectionError):  # not connected: not blamed on the device
            await dev.get_status()
        await cloud.broker.wait_up()
        # connected is set before the subscriptions are renewed: wait for both
        await _until(lambda: client.connected and events[-1:] == ["resubscribed"], timeout=15)
        assert "reconnect_failed" in events and events[-2:] == ["connected", "resubscribed"]
        assert (await dev.get_status()).mac == dev.mac


async def test_rejected_password_on_renewal_stops_reconnecting(cloud: FakeCloud) -> None:
    events: list[tuple[str, str]] = []
    async with NaviLinkClient(config=_config(cloud, request_timeout=1.0)) as client:
        client.add_connection_listener(lambda e, d: events.append((e, d)))
        await client.authenticate()
        dev = (await client.get_devices())[0]
        await dev.get_status()
        client.mqtt.resume_grace_s = 0.5
        cloud.accounts[cloud.demo_email] = "changed-elsewhere"
        assert cloud.rest is not None
        await cloud.expire_credentials(rest=False, aws=True)
        await _until(lambda: any(e == "auth_failed" for e, _ in events))
        await asyncio.sleep(2.0)  # no loop of sign-in attempts follows
        assert cloud.rest.bad_tries[cloud.demo_email] == 1
        assert not client.connected
        with pytest.raises(InvalidCredentialsError):  # requests fail fast and say why
            await dev.get_status()
        assert cloud.rest.bad_tries[cloud.demo_email] == 1
        await client.authenticate(cloud.demo_email, "changed-elsewhere")  # the user fixes it
        assert (await dev.get_status()).mac == dev.mac


async def test_two_clients_get_distinct_stable_ids(cloud: FakeCloud) -> None:
    async with NaviLinkClient(config=_config(cloud)) as a, NaviLinkClient(config=_config(cloud)) as b:
        assert a.client_id != b.client_id and a.client_id.startswith("navilink-etl-")
        for c in (a, b):
            await c.authenticate()
        sa, sb = await asyncio.gather((await a.get_devices())[0].get_status(),
                                      (await b.get_devices())[0].get_status())
        assert sa.client_id == a.client_id and sb.client_id == b.client_id
        assert sorted(cloud.broker.connected_client_ids()) == sorted([a.client_id, b.client_id])
    async with NaviLinkClient(config=_config(cloud, client_id="my-fixed-id")) as c:
        await c.authenticate()
        await (await c.get_devices())[0].get_status()
        assert cloud.broker.connected_client_ids() == ["my-fixed-id"]


async def test_no_secret_reaches_logs_or_reprs(cloud: FakeCloud, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = [cloud.demo_password]
    async with NaviLinkClient(config=_config(cloud)) as client:
        client.mqtt.resume_grace_s = 0.5
        await client.authenticate()

        def collect() -> None:
            t = client.auth.tokens
            assert t is not None
            seen.extend(x for x in (t.access_token, t.refresh_token, t.id_token, t.access_key_id,
                                    t.secret_key, t.session_token) if x)

        collect()
        dev = (await client.get_devices())[0]
        await dev.set_temperature(125)
        await cloud.expire_credentials(rest=True, aws=True)
        await client.get_devices()
        collect()
        await _until(lambda: client.connected and client.auth.sign_in_count >= 2)
        await dev.get_status()
        collect()
        texts = [caplog.text, repr(client), repr(client.auth), repr(client.auth.tokens), repr(dev),
                 repr(client.mqtt), repr(client.config), str(client.config)]
    assert len(set(seen)) >= 10
    for secret in set(seen):
        for text in texts:
            assert secret not in text
