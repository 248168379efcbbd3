"""REST calls of the cloud client against the fake REST API on 127.0.0.1: paging, envelopes, extras."""

from __future__ import annotations

import pytest

from navilink_etl import APIError, NaviLinkClient, NaviLinkConfig
from navilink_etl.cloud.rest import _device_items

from .cloud_helpers import EMAIL, PASSWORD, fake_rest, stub_devices
from .conftest import load_capture


def _config(url: str) -> NaviLinkConfig:
    return NaviLinkConfig(email=EMAIL, password=PASSWORD, rest_base_url=url)


@pytest.mark.parametrize(("n", "pages"), [(1, 1), (20, 2), (40, 3), (45, 3)])
async def test_device_list_walks_pages_of_20_until_a_short_page(n: int, pages: int) -> None:
    devices = stub_devices(n)
    offline = {devices[-1].mac}
    async with fake_rest(devices, offline) as (fr, url), NaviLinkClient(config=_config(url)) as client:
        listed = await client.get_devices()
        assert [d.mac for d in listed] == [d.mac for d in devices]
        assert fr.calls["device/list"] == pages
        assert [d.online for d in listed] == [d.mac not in offline for d in devices]
        d0 = listed[0]
        assert (d0.additional_value, d0.device_type, d0.name) == ("5322", 52, "NWP500")
        assert d0.home_seq == 25000 and set(d0.location) == {"state", "city", "address"}


async def test_device_info_keeps_mac_and_errors_carry_context() -> None:
    async with fake_rest(stub_devices(1)) as (fr, url), NaviLinkClient(config=_config(url)) as client:
        dev = (await client.get_devices())[0]
        data = await dev.get_info()
        assert "macAddress" not in data["deviceInfo"]
        assert dev.info["macAddress"] == dev.mac and dev.info["additionalValue"] == "5322"
        fw = await dev.get_firmware()
        assert [f["curSwCode"] for f in fw][:1] == [33556241]
        fr.forbidden = {"device/info"}
        with pytest.raises(APIError) as ei:
            await dev.get_info()
        assert ei.value.status == 403 and ei.value.endpoint == "/device/info"
        # an error envelope with HTTP 200 (unknown device) is an APIError too
        with pytest.raises(APIError) as ei:
            await client.rest.firmware_info(EMAIL, "000000000000", "1")
        assert ei.value.code == 404 and ei.value.status == 200 and ei.value.msg == "NOT_FOUND"


async def test_tou_is_read_with_the_controller_serial() -> None:
    async with fake_rest(stub_devices(1)) as (_, url), NaviLinkClient(config=_config(url)) as client:
        await client.authenticate()
        mac = (await client.get_devices())[0].mac
        tou = await client.rest.tou(EMAIL, mac, "5322", "56496061BT22230408")
        assert tou["touInfo"]["controllerId"] == "56496061BT22230408"
        weeks = {i["week"] for s in tou["touInfo"]["schedule"] for i in s["interval"]}
        assert weeks == {124, 130}


def test_device_list_data_is_accepted_bare_or_wrapped() -> None:
    captured = load_capture("rest_device_list_response.json")["data"]["data"]
    assert _device_items(captured)[0]["deviceInfo"]["macAddress"] == "aabbccddeeff"
    assert len(_device_items({"deviceList": captured})) == 1
    assert len(_device_items({"devices": captured})) == 1
    assert _device_items(None) == [] and _device_items([{"nope": 1}]) == [{"nope": 1}]  # the client judges entries
