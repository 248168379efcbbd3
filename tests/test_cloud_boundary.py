"""What the cloud sends is checked where it arrives: device-list entries, credentials, TOU plans,
energy replies. Bad entries are skipped and reported; everything else is a NaviLinkError subclass."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from navilink_etl import AuthenticationError, NaviLinkClient, NaviLinkConfig
from navilink_etl.cloud.auth import Tokens
from navilink_etl.cloud.client import SkippedDevice
from navilink_etl.cloud.device import check_energy_days, device_identity
from navilink_etl.cloud.tou import validate_tou_plan
from navilink_etl.errors import PayloadError
from navilink_etl.sim.cloud import FakeCloud
from navilink_etl.sim.hostile import DEFAULT_MAC, TRAVERSAL_MAC, WRONG_TYPES_MAC, HostileProfile, Toggles
from navilink_etl.sim.rest import captured_tou_data
from navilink_etl.status import EnergyDay

from .cloud_helpers import EMAIL, PASSWORD, fake_rest, stub_devices

GOOD = {"deviceInfo": {"macAddress": "04:78:63:32:00:AA", "deviceType": 52, "homeSeq": 1,
                       "additionalValue": "5322", "deviceName": "Garage", "connected": 2}}  # fmt: skip


def _entry(**info: Any) -> dict[str, Any]:
    return {"deviceInfo": {**GOOD["deviceInfo"], **info}}


def test_device_identity_canonicalises_the_mac_and_types_the_fields() -> None:
    ident = device_identity(GOOD)
    assert ident["mac"] == "0478633200aa" and ident["device_type"] == 52 and ident["name"] == "Garage"
    assert device_identity(_entry(deviceType=None, additionalValue=5322))["device_type"] == 52
    assert device_identity(_entry(deviceName="Tank\n2\x00" + "x" * 500))["name"] == "Tank 2 " + "x" * 121
    assert device_identity(_entry(deviceName="\t"))["name"] == "NWP500"


@pytest.mark.parametrize("bad", [
    None, [], {"deviceInfo": "x"}, _entry(macAddress=TRAVERSAL_MAC), _entry(macAddress=DEFAULT_MAC),
    _entry(macAddress="/etc/passwd"), _entry(macAddress=None), _entry(macAddress=12), _entry(deviceType="fifty-two"),
    _entry(deviceType=True), _entry(deviceType=2**70), _entry(homeSeq=[1]), _entry(deviceName={"x": 1}),
    _entry(additionalValue="a\nb"), _entry(additionalValue="x" * 500), _entry(connected=1.5),
])  # fmt: skip
def test_a_malformed_device_list_entry_is_a_payload_error(bad: Any) -> None:
    with pytest.raises(PayloadError):
        device_identity(bad)


async def test_bad_entries_are_skipped_reported_and_the_good_ones_returned(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with FakeCloud(n_devices=2, hostile=HostileProfile(Toggles())) as fc:
        config = NaviLinkConfig(**fc.client_overrides())
        async with NaviLinkClient(config=config) as client:
            seen: list[SkippedDevice] = []
            client.add_skip_listener(seen.append)
            await client.authenticate()
            devices = await client.get_devices()
    assert sorted(d.mac for d in devices) == sorted(d.mac for d in fc.devices)
    assert seen == client.skipped and len(seen) == 4
    reasons = " | ".join(s.reason for s in seen)
    assert "escaped_dir" in reasons and "'default'" in reasons and "more than once" in reasons
    assert "deviceType" in reasons or "homeSeq" in reasons
    assert any(s.mac and WRONG_TYPES_MAC in s.mac for s in seen)
    assert caplog.text.count(" skipped: ") == 4
    assert client.device(fc.devices[0].mac.upper()) is not None


@pytest.mark.parametrize("field", ["accessToken", "refreshToken", "idToken", "accessKeyId", "secretKey",
                                   "sessionToken"])
@pytest.mark.parametrize("value", [12345678, ["AKIA"], {"k": "v"}, True, 1.5])
def test_a_credential_field_of_the_wrong_type_is_an_authentication_error(field: str, value: Any) -> None:
    tok = {"accessToken": "a" * 20, "refreshToken": "r" * 20, "idToken": "i" * 20, "accessKeyId": "ASIA" * 4,
           "secretKey": "s" * 40, "sessionToken": "t" * 60, "authenticationExpiresIn": 3600,
           "authorizationExpiresIn": 3600, field: value}  # fmt: skip
    with pytest.raises(AuthenticationError) as ei:
        Tokens.from_sign_in(tok)
    assert field in str(ei.value) and type(value).__name__ in str(ei.value)
    assert "AKIA" not in str(ei.value) and "sss" not in str(ei.value)


@pytest.mark.parametrize("expires", [10**30, float("inf"), float("nan"), "x", None, -5, True])
def test_absurd_expiry_values_are_clamped_not_raised(expires: Any) -> None:
    t = Tokens.from_sign_in({"accessToken": "a" * 20, "authenticationExpiresIn": expires,
                             "authorizationExpiresIn": expires})
    assert t.access_lifetime.total_seconds() <= 7 * 24 * 3600


async def test_a_sign_in_reply_with_a_non_string_key_id_is_a_clear_error() -> None:
    async with fake_rest(stub_devices(1)) as (fr, url):
        real = fr.tokens.sign_in
        fr.tokens.sign_in = lambda email: {**real(email), "accessKeyId": 123456}  # type: ignore[method-assign]
        async with NaviLinkClient(config=NaviLinkConfig(email=EMAIL, password=PASSWORD, rest_base_url=url)) as c:
            with pytest.raises(AuthenticationError, match="accessKeyId is a int"):
                await c.authenticate()


async def test_a_rejected_sign_in_names_no_e_mail() -> None:
    async with fake_rest(stub_devices(1)) as (_, url):
        cfg = NaviLinkConfig(email=EMAIL, password="wrong-password", rest_base_url=url)
        async with NaviLinkClient(config=cfg) as client:
            for _ in range(2):  # the rejection, then the refusal to retry
                with pytest.raises(AuthenticationError) as ei:
                    await client.authenticate() if _ == 0 else await client.auth.aws_credentials(force=True)
                assert EMAIL not in str(ei.value) and EMAIL not in repr(ei.value.context)


def test_the_captured_tou_plan_passes_and_broken_ones_say_why() -> None:
    good = captured_tou_data()
    assert validate_tou_plan(good) == good and validate_tou_plan(None) == {} and validate_tou_plan({}) == {}
    broken = HostileProfile().tou_reply("m", "m", good)
    with pytest.raises(PayloadError, match="season"):
        validate_tou_plan(broken)
    iv = good["touInfo"]["schedule"][0]["interval"][0]
    for key, value in (("startHour", 24), ("priceMin", -1), ("decimalPoint", 99), ("week", "x"),
                       ("endHour", None), ("priceMin", float("nan"))):
        bad = {**good, "touInfo": {**good["touInfo"], "schedule": [{"season": 1, "interval": [{**iv, key: value}]}]}}
        with pytest.raises(PayloadError, match=key):
            validate_tou_plan(bad)
    for bad_data in ("plan", [1], {"touInfo": []}, {"touInfo": {"schedule": []}}):
        with pytest.raises(PayloadError):
            validate_tou_plan(bad_data)


def test_energy_days_must_be_the_asked_year_and_months() -> None:
    def day(y: int, m: int, d: int) -> EnergyDay:
        return EnergyDay(year=y, month=m, day=d, hp_wh=1, he_wh=0, hp_h=0, he_h=0)

    assert [d.day for d in check_energy_days([day(2026, 2, 28), day(2026, 2, 29)], 2026, [2])] == [28]
    for bad in (day(10**18, 2, 1), day(2025, 2, 1), day(2026, 3, 1)):
        with pytest.raises(PayloadError):
            check_energy_days([bad], 2026, [2])


async def test_energy_replies_with_absurd_years_are_payload_errors() -> None:
    async with FakeCloud(n_devices=1, hostile=HostileProfile(Toggles(list_entries=False))) as fc, \
            NaviLinkClient(config=NaviLinkConfig(**fc.client_overrides())) as client:
        await client.authenticate()
        dev = (await client.get_devices())[0]
        # the parser's year range or the client's "not asked for" check: either names the year
        with pytest.raises(PayloadError, match=r"year.*out of range|not asked for"):
            await dev.get_energy_usage(2026, [1], timeout=10)
        # a 2^64-1 counter: that day is dropped by the parser, the rest of the month is kept
        days = await dev.get_energy_usage(2026, [1], timeout=10)
        assert all(d.hp_wh < 2**31 and d.he_wh < 2**31 for d in days)
        assert len(await dev.get_energy_usage(2026, [1], timeout=10)) == 31
        with pytest.raises(PayloadError, match="TOU plan rejected"):
            await dev.get_tou()
