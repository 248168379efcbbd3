"""The fake cloud's REST API: captured shapes, auth rules and REST faults, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from navilink_etl.sim.cloud import FakeCloud

from .conftest import load_capture
from .fake_cloud_probe import sign_in
from .fakes_device import FixtureDevice


@pytest.fixture
async def fc() -> AsyncIterator[FakeCloud]:
    devices = [FixtureDevice(mac=f"aabbccdd{i:04x}", home_seq=25004 + i) for i in range(23)]
    async with FakeCloud(devices, authorization_expires_in=1800) as cloud:
        yield cloud


async def call(fc: FakeCloud, path: str, body: Any = None, *, token: str | None = None,
               method: str = "POST", params: dict[str, str] | None = None) -> tuple[int, Any]:  # fmt: skip
    headers = {"authorization": token} if token is not None else {}
    async with aiohttp.ClientSession() as s, s.request(
        method, f"{fc.rest_base_url}{path}", json=body, headers=headers, params=params
    ) as r:
        return r.status, await r.json(content_type=None)


async def test_sign_in_returns_the_captured_shape(fc: FakeCloud) -> None:
    body = await sign_in(fc)
    assert (body["code"], body["msg"]) == (200, "SUCCESS")
    assert list(body["data"]) == ["userInfo", "legal", "token"]
    token = body["data"]["token"]
    assert list(token) == ["idToken", "accessToken", "refreshToken", "authenticationExpiresIn",
                           "accessKeyId", "secretKey", "sessionToken", "authorizationExpiresIn"]  # fmt: skip
    assert token["authenticationExpiresIn"] == 3600 and token["authorizationExpiresIn"] == 1800
    assert len(token["accessKeyId"]) == 20 and token["accessKeyId"].startswith("ASIA")
    assert len(token["secretKey"]) == 40
    assert body["data"]["userInfo"]["userType"] == "O" and isinstance(body["data"]["userInfo"]["userSeq"], int)


async def test_sign_in_failures_are_http_200_with_a_body_code(fc: FakeCloud) -> None:
    assert await call(fc, "/user/sign-in", {"userId": fc.demo_email, "password": "nope"}) == (
        200, {"code": 1001, "msg": "INVALID_USER_PASSWORD"})  # fmt: skip
    status, body = await call(fc, "/user/sign-in", {"userId": "who@x.y", "password": "x"})
    assert status == 200 and body["msg"] == "USER_NOT_FOUND"
    status, body = await call(fc, "/user/sign-in", [1, 2])
    assert status == 200 and body["msg"] == "COMMON_BAD_REQUEST"


async def test_account_locks_after_n_bad_tries(fc: FakeCloud) -> None:
    fc.set_lock_after(2)
    for _ in range(2):
        assert (await call(fc, "/user/sign-in", {"userId": fc.demo_email, "password": "bad"}))[1]["code"] == 1001
    _, body = await call(fc, "/user/sign-in", {"userId": fc.demo_email, "password": fc.demo_password})
    assert body["msg"] == "USER_LOCKED" and "data" not in body


async def test_raw_token_works_bearer_and_unknown_get_401(fc: FakeCloud) -> None:
    token = (await sign_in(fc))["data"]["token"]["accessToken"]
    status, body = await call(fc, "/device/list", {"offset": 0, "count": 20, "userId": fc.demo_email}, token=token)
    assert status == 200 and body["code"] == 200
    for bad in (f"Bearer {token}", "not-a-token", None):
        assert await call(fc, "/device/list", {"offset": 0, "count": 20}, token=bad) == (
            401, {"code": 401, "msg": "UNAUTHORIZED", "data": None})  # fmt: skip
    fc.set_unauthorized_response(403)
    assert (await call(fc, "/device/list", {}, token=f"Bearer {token}"))[0] == 403


async def test_expired_access_token_gets_401_and_refresh_renews_it(fc: FakeCloud) -> None:
    token = (await sign_in(fc))["data"]["token"]
    await fc.expire_credentials(aws=False)
    assert (await call(fc, "/device/list", {}, token=token["accessToken"]))[0] == 401
    status, body = await call(fc, "/auth/refresh", {"refreshToken": token["refreshToken"]})
    assert status == 200
    assert list(body["data"]) == ["idToken", "accessToken", "refreshToken", "authenticationExpiresIn"]
    assert body["data"]["refreshToken"] == token["refreshToken"]  # not rotated by default
    assert (await call(fc, "/device/list", {}, token=body["data"]["accessToken"]))[0] == 200


async def test_refresh_rotation_invalidates_the_old_refresh_token(fc: FakeCloud) -> None:
    fc.set_refresh_rotation(True)
    token = (await sign_in(fc))["data"]["token"]
    _, body = await call(fc, "/auth/refresh", {"refreshToken": token["refreshToken"]})
    assert body["data"]["refreshToken"] != token["refreshToken"]
    assert (await call(fc, "/auth/refresh", {"refreshToken": token["refreshToken"]}))[0] == 401


async def test_device_list_pages_by_twenty(fc: FakeCloud) -> None:
    token = (await sign_in(fc))["data"]["token"]["accessToken"]
    _, first = await call(fc, "/device/list", {"offset": 0, "count": 50, "userId": fc.demo_email}, token=token)
    _, second = await call(fc, "/device/list", {"offset": 20, "count": 20, "userId": fc.demo_email}, token=token)
    assert len(first["data"]) == 20 and len(second["data"]) == 3
    macs = [d["deviceInfo"]["macAddress"] for d in first["data"] + second["data"]]
    assert macs == [d.mac for d in fc.devices]
    captured = load_capture("rest_device_list_response.json")["data"]["data"][0]
    entry = first["data"][0]
    assert list(entry) == list(captured)
    assert list(entry["deviceInfo"]) == list(captured["deviceInfo"])
    assert list(entry["location"]) == list(captured["location"])
    assert entry["deviceInfo"]["connected"] == 2 and entry["deviceInfo"]["deviceType"] == 52


async def test_device_info_firmware_tou_and_push_token_shapes(fc: FakeCloud) -> None:
    token = (await sign_in(fc))["data"]["token"]["accessToken"]
    d = fc.devices[0]
    key = {"macAddress": d.mac, "additionalValue": d.additional_value, "userId": fc.demo_email}
    _, info = await call(fc, "/device/info", key, token=token)
    assert list(info["data"]) == ["deviceInfo", "location", "installer", "alarmInfo", "descaling"]
    assert info["data"]["deviceInfo"] == {"homeSeq": d.home_seq, "deviceName": "NWP500", "deviceType": 52,
                                          "installType": "R", "connected": 2}  # fmt: skip
    _, fw = await call(fc, "/device/firmware/info", key, token=token)
    assert len(fw["data"]["firmwares"]) == 4
    assert fw["data"]["firmwares"][0]["curVersion"] == 0x0A010000  # the 2025-09 controller
    _, tou = await call(fc, "/device/tou", token=token, method="GET",
                        params={"macAddress": d.mac, "additionalValue": "5322", "controllerId": "x",
                                "userId": fc.demo_email, "userType": "O"})  # fmt: skip
    captured = load_capture("rest_device_tou_response.json")["data"]["data"]
    captured["touInfo"]["controllerId"] = "SIM0001"  # the fixture device's serial
    assert tou["data"] == captured
    assert await call(fc, "/app/update-push-token", {"pushToken": "x"}, token=token) == (
        200, {"code": 200, "msg": "SUCCESS"})  # fmt: skip


async def test_rest_faults_offline_forbidden_5xx_and_delay(fc: FakeCloud) -> None:
    token = (await sign_in(fc))["data"]["token"]["accessToken"]
    d = fc.devices[1]
    fc.set_offline(d.mac, True)
    _, page = await call(fc, "/device/list", {"offset": 0, "count": 20}, token=token)
    assert [e["deviceInfo"]["connected"] for e in page["data"][:3]] == [2, 1, 2]
    fc.rest_forbid("device/info")
    assert (await call(fc, "/device/info", {"macAddress": d.mac}, token=token))[0] == 403
    fc.rest_fail_next(2, status=503)
    assert [(await call(fc, "/device/list", {}, token=token))[0] for _ in range(3)] == [503, 503, 200]
    fc.rest_delay(0.3)
    t0 = time.monotonic()
    await call(fc, "/device/list", {}, token=token)
    assert time.monotonic() - t0 >= 0.3
    fc.rest_delay(5)
    with pytest.raises(asyncio.TimeoutError):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as s:
            await s.post(f"{fc.rest_base_url}/device/list", json={}, headers={"authorization": token})


def test_env_and_overrides_point_at_the_fake() -> None:
    async def run() -> tuple[dict[str, Any], dict[str, str]]:
        async with FakeCloud([FixtureDevice()]) as cloud:
            return cloud.client_overrides(), cloud.env()

    overrides, env = asyncio.run(run())
    assert overrides["rest_base_url"].startswith("http://127.0.0.1:") and overrides["iot_endpoint"] == "localhost"
    assert env["NAVILINK_EMAIL"] == "demo@navilink.local" and env["NAVILINK_PASSWORD"] == "demo-password"
    assert env["NAVILINK_IOT_PORT"] == str(overrides["iot_port"])
    from navilink_etl.config import load_config

    cfg = load_config(**{k: v for k, v in overrides.items() if k != "ca_file"})
    assert cfg.iot_port == overrides["iot_port"] and not cfg.is_real_cloud
