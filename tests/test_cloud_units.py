"""Pure parts of the cloud client: ids, backoff, mode names, setpoint checks, message dispatch."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import UTC, datetime

import orjson
import pytest

from navilink_etl import DhwMode, NaviLinkClient, NaviLinkConfig, NaviLinkError, ValidationError
from navilink_etl.cloud.device import NaviLinkDevice, coerce_mode
from navilink_etl.cloud.mqtt import MqttSession, _Pending, backoff_delay, new_client_id, new_session_id
from navilink_etl.status import Feature

from .conftest import load_capture


def test_backoff_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(1)
    for attempt, base in [(0, 1), (1, 2), (3, 8), (6, 64), (7, 120), (30, 120)]:
        samples = [backoff_delay(attempt, rng) for _ in range(200)]
        assert all(0.5 * base <= s <= 1.5 * base for s in samples)
        assert max(samples) - min(samples) > 0.5 * base  # jitter spreads a fleet out


def test_client_and_session_ids_are_unique() -> None:
    assert re.fullmatch(r"navilink-etl-[0-9a-f]{8}", new_client_id())
    assert len({new_client_id() for _ in range(100)}) == 100
    ids = [new_session_id() for _ in range(2000)]
    assert len(set(ids)) == 2000 and all(i.isdigit() and len(i) >= 13 for i in ids)
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)
    assert NaviLinkClient(NaviLinkConfig()).client_id != NaviLinkClient(NaviLinkConfig()).client_id
    assert NaviLinkClient(NaviLinkConfig(client_id="fixed")).client_id == "fixed"


@pytest.mark.parametrize(("given", "want"), [
    (1, DhwMode.HEAT_PUMP), (2, DhwMode.ELECTRIC), (3, DhwMode.ENERGY_SAVER), (4, DhwMode.HIGH_DEMAND),
    (5, DhwMode.VACATION), (DhwMode.ELECTRIC, DhwMode.ELECTRIC), ("heat_pump", DhwMode.HEAT_PUMP),
    ("Electric", DhwMode.ELECTRIC), ("energy-saver", DhwMode.ENERGY_SAVER),
    ("high demand", DhwMode.HIGH_DEMAND), ("vacation", DhwMode.VACATION),
])  # fmt: skip
def test_dhw_modes_accept_enum_number_and_name(given: DhwMode | int | str, want: DhwMode) -> None:
    assert coerce_mode(given) is want


@pytest.mark.parametrize("bad", [0, 6, 7, -1, True, 1.0, "turbo", None])
def test_invalid_dhw_modes_are_rejected(bad: object) -> None:
    with pytest.raises(ValidationError):
        coerce_mode(bad)  # type: ignore[arg-type]


def _device() -> NaviLinkDevice:
    item = load_capture("rest_device_list_response.json")["data"]["data"][0]
    return NaviLinkDevice(NaviLinkClient(NaviLinkConfig()), item)


def test_device_from_the_captured_list() -> None:
    d = _device()
    assert (d.mac, d.additional_value, d.home_seq, d.device_type, d.online) == (
        "aabbccddeeff", "5322", 25004, 52, True)
    assert d.location["city"] == "San Rafael " and d.temperature_range_f() == (95.0, 150.0)


async def test_setpoint_is_checked_against_the_did_range_before_sending() -> None:
    d = _device()
    d.feature = Feature(raw={"dhwTemperatureMin": 81, "dhwTemperatureMax": 131})  # 104.9-149.9 F
    for bad in (104, 151, 95, float("inf"), True, "120"):
        with pytest.raises(ValidationError):
            await d.set_temperature(bad)  # type: ignore[arg-type]
    # 150 F rounds to 131 half-degC, the maximum: valid, so it gets as far as the (closed) client
    with pytest.raises(NaviLinkError) as ei:
        await d.set_temperature(150)
    assert not isinstance(ei.value, ValidationError)


async def test_dispatch_feeds_listeners_and_matches_replies_by_content() -> None:
    session = MqttSession(NaviLinkConfig(), None, "navilink-etl-00000000")  # type: ignore[arg-type]
    seen: list[str] = []
    session.add_message_listener(lambda t, p, at: seen.append(t))
    session.add_message_listener(lambda t, p, at: 1 / 0)  # isolated
    reply = load_capture("status_response_heatpump_running.json")
    loop = asyncio.get_running_loop()
    status_fut: asyncio.Future = loop.create_future()
    feature_fut: asyncio.Future = loop.create_future()
    session._pending[reply["sessionID"]] = _Pending(status_fut, "aabbccddeeff", "status")
    session._pending["999"] = _Pending(feature_fut, "aabbccddeeff", "feature")
    now = datetime.now(UTC)
    push = load_capture("status_push_heat_source_change_67108892.json")
    session._dispatch("cmd/52/navilink-aabbccddeeff/x/res", orjson.dumps(push), now)
    assert not status_fut.done()  # a push (counter sessionID) is not our reply
    session._dispatch("t/junk", b"{not json", now)
    session._dispatch("cmd/52/navilink-aabbccddeeff/x/res", orjson.dumps(reply), now)
    assert status_fut.result()[0].session_id == reply["sessionID"]
    did = {"clientID": "x", "sessionID": "different", "response": {
        "macAddress": "aabbccddeeff", "feature": {"dhwTemperatureMin": 81}}}
    session._dispatch("cmd/52/navilink-aabbccddeeff/x/res", orjson.dumps(did), now)
    assert feature_fut.result()[0].kind == "feature"
    assert seen == ["cmd/52/navilink-aabbccddeeff/x/res", "t/junk"] + ["cmd/52/navilink-aabbccddeeff/x/res"] * 2


def test_package_exports_the_public_api() -> None:
    import navilink_etl

    for name in ("NaviLinkClient", "NaviLinkConfig", "NaviLinkDevice", "DeviceStatus", "DhwMode",
                 "NaviLinkError", "InvalidCredentialsError", "DeviceOfflineError", "RequestTimeoutError",
                 "ValidationError", "APIError", "NaviLinkConnectionError", "AuthenticationError"):
        assert getattr(navilink_etl, name).__name__ == name
        assert name in navilink_etl.__all__
