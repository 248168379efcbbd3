"""Hypothesis at the cloud boundary: device-list entries, sign-in and refresh bodies, TOU plans,
energy replies and config values raise nothing but their documented NaviLinkError subclass.

``NAVILINK_FUZZ_EXAMPLES=10000 pytest tests/test_cloud_fuzz.py`` runs the long version.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from navilink_etl.cloud.auth import Authenticator
from navilink_etl.cloud.device import device_identity, read_energy_reply
from navilink_etl.cloud.tou import validate_tou_plan
from navilink_etl.config import load_config
from navilink_etl.errors import AuthenticationError, ConfigurationError, PayloadError

EXAMPLES = int(os.environ.get("NAVILINK_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
           | st.sampled_from(["", "default", "aa/../../../../escaped_dir", "AABBCCDDEEFF", "04:78:63:32:00:01",
                              "/etc/passwd", "0" * 12, "\x00", "é" * 13]))  # fmt: skip
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                        max_size=4), max_leaves=12)


def near(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the real keys (some missing) holding any value, plus stray keys."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), json_values | scalars, max_size=len(keys) + 2)


DEVICE_KEYS = ["macAddress", "deviceType", "homeSeq", "additionalValue", "deviceName", "connected"]
device_entries = st.one_of(
    json_values,
    st.fixed_dictionaries({"deviceInfo": near(DEVICE_KEYS)}, optional={"location": json_values}),
)


@FUZZ
@given(device_entries)
def test_device_list_entries(entry: Any) -> None:
    try:
        ident = device_identity(entry)
    except PayloadError:
        return
    assert len(ident["mac"]) == 12 and ident["mac"].isalnum() and isinstance(ident["device_type"], int)


TOKEN_KEYS = ["accessToken", "refreshToken", "idToken", "accessKeyId", "secretKey", "sessionToken",
              "authenticationExpiresIn", "authorizationExpiresIn"]
sign_in_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({
        "code": st.sampled_from([200, 1001, 401, 500, "200", None]) | scalars,
        "msg": scalars,
        "data": st.one_of(json_values, st.fixed_dictionaries(
            {"token": near(TOKEN_KEYS)}, optional={"userInfo": near(["userSeq", "userType", "userFirstName"])})),
    }),
)


class _Scripted(Authenticator):
    """The real sign-in/refresh logic with the HTTP exchange replaced by given (status, body) pairs."""

    def __init__(self, replies: list[tuple[int, Any]]) -> None:
        super().__init__(None, "https://example.com/api", "ua")  # type: ignore[arg-type]
        self._replies = replies

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self._replies.pop(0) if self._replies else (200, None)


@FUZZ
@given(st.sampled_from([200, 401, 403, 500]), sign_in_bodies, sign_in_bodies)
def test_sign_in_and_refresh_bodies(status: int, body: Any, refresh: Any) -> None:
    async def go() -> None:
        auth = _Scripted([(status, body), (200, refresh), (status, body)])
        try:
            await auth.sign_in("owner@example.com", "a-password")
            await auth._refresh_locked()  # the refresh reply (or a fallback sign-in)
        except AuthenticationError as exc:  # InvalidCredentialsError included
            assert "owner@example.com" not in str(exc)
        finally:
            auth.forget()

    asyncio.run(go())


INTERVAL_KEYS = ["week", "startHour", "startMinute", "endHour", "endMinute", "priceMin", "priceMax", "decimalPoint"]
small_ints = st.integers(-2, 300) | scalars
intervals = st.dictionaries(st.sampled_from(INTERVAL_KEYS), small_ints, min_size=4)
seasons = st.fixed_dictionaries({"season": st.integers(0, 5000) | scalars, "interval": st.lists(intervals, max_size=3)
                                 | json_values})
tou_plans = st.one_of(
    json_values,
    st.fixed_dictionaries({"touInfo": st.fixed_dictionaries({"schedule": st.lists(seasons, max_size=3) | json_values})
                           | json_values}),
)


@FUZZ
@given(tou_plans)
def test_tou_plans(plan: Any) -> None:
    try:
        out = validate_tou_plan(plan)
    except PayloadError:
        return
    assert out == {} or out["touInfo"]["schedule"]


day_objects = st.dictionaries(st.sampled_from(["hpUsage", "heUsage", "hpTime", "heTime"]),
                              st.integers(-1, 2**64) | scalars, min_size=3)
energy_replies = st.one_of(
    json_values,
    st.fixed_dictionaries({"usage": st.lists(st.fixed_dictionaries({
        "year": st.sampled_from([2026, 2025, 10**18, -1, 0]) | scalars,
        "month": st.integers(0, 13) | scalars,
        "data": st.lists(day_objects, max_size=3) | json_values,
    }), max_size=3) | json_values}),
)


@FUZZ
@given(energy_replies)
def test_energy_replies(reply: Any) -> None:
    try:
        days = read_energy_reply(reply, 2026, [1, 2])
    except PayloadError:
        return
    assert all(d.year == 2026 and d.month in (1, 2) for d in days)


CONFIG_FIELDS = ["email", "password", "polling_interval", "data_dir", "log_level", "timezone", "rest_base_url",
                 "iot_endpoint", "iot_port", "iot_region", "ca_file", "client_id", "request_timeout", "tariff",
                 "price_per_kwh", "price_csv", "inlet_temperature_f"]
config_values = st.dictionaries(st.sampled_from(CONFIG_FIELDS), scalars | st.text(max_size=300)
                                | st.sampled_from(["http://10.0.0.1/x", "https://a", "../../etc", "a" * 5000]),
                                max_size=4)


@FUZZ
@given(config_values)
def test_config_values(values: dict[str, Any]) -> None:
    if isinstance(values.get("password"), str):
        values["password"] = "Zq9-marker-" + values["password"]  # recognisable if it ever shows
    try:
        load_config(**values)
    except ConfigurationError as exc:
        assert "Zq9-marker-" not in str(exc)
