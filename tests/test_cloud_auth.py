"""Sign-in, token refresh and AWS credential renewal against the fake REST API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from navilink_etl import (
    APIError,
    AuthenticationError,
    InvalidCredentialsError,
    NaviLinkClient,
    NaviLinkConfig,
)
from navilink_etl.cloud.auth import Tokens, is_invalid_credentials

from .cloud_helpers import EMAIL, PASSWORD, fake_rest, stub_devices


def _config(url: str, password: str = PASSWORD) -> NaviLinkConfig:
    return NaviLinkConfig(email=EMAIL, password=password, rest_base_url=url)


def test_invalid_credential_bodies_are_recognised() -> None:
    assert is_invalid_credentials(1001, "INVALID_USER_PASSWORD")
    assert is_invalid_credentials(1002, "USER_NOT_FOUND")
    assert is_invalid_credentials(401, "whatever")
    assert is_invalid_credentials(400, "Invalid credentials")
    assert is_invalid_credentials(500, "Unauthorized access")
    assert not is_invalid_credentials(400, "COMMON_BAD_REQUEST")
    assert not is_invalid_credentials(503, "SERVICE_UNAVAILABLE")


def test_refresh_reply_without_refresh_token_keeps_the_old_one() -> None:
    t = Tokens.from_sign_in({"accessToken": "a1", "refreshToken": "r1", "idToken": "i1",
                             "authenticationExpiresIn": 3600, "accessKeyId": "AKID", "secretKey": "S",
                             "sessionToken": "T", "authorizationExpiresIn": 3600})
    t2 = t.refreshed({"accessToken": "a2", "authenticationExpiresIn": 3600})
    assert (t2.access_token, t2.refresh_token, t2.id_token) == ("a2", "r1", "i1")
    assert t2.access_key_id == "AKID" and t2.aws_valid()
    assert "a1" not in repr(t) and "r1" not in repr(t) and "AKID" not in repr(t)


async def test_sign_in_accepts_secretstr_and_sends_raw_authorization() -> None:
    async with fake_rest(stub_devices(1)) as (fr, url):
        cfg = _config(url)
        async with NaviLinkClient(config=cfg) as client:
            await client.authenticate(cfg.email, cfg.password)  # SecretStr, as in the original snippet
            assert client.authenticated and client.user_seq == 36283 and client.user_type == "O"
            devices = await client.get_devices()  # the fake rejects "Bearer ..." with 401
            assert [d.mac for d in devices] == ["047863320000"]
            assert fr.calls["user/sign-in"] == 1 and fr.calls["auth/refresh"] == 0


async def test_bad_password_is_never_retried_and_blocks_automatic_sign_in() -> None:
    async with fake_rest(stub_devices(1)) as (fr, url), \
            NaviLinkClient(config=_config(url, "wrong-password")) as client:
        with pytest.raises(InvalidCredentialsError) as ei:
            await client.authenticate()
        assert "wrong-password" not in str(ei.value)
        assert fr.bad_tries[EMAIL] == 1 and fr.calls["user/sign-in"] == 1
        # an automatic re-sign-in (as the MQTT supervisor does) refuses without a request
        with pytest.raises(InvalidCredentialsError):
            await client.auth.aws_credentials(force=True)
        assert fr.calls["user/sign-in"] == 1
        # an explicit authenticate() with the right password clears the block
        await client.authenticate(EMAIL, SecretStr(PASSWORD))
        assert client.authenticated and fr.calls["user/sign-in"] == 2


async def test_unknown_user_is_invalid_credentials() -> None:
    async with fake_rest(stub_devices(1)) as (_, url), NaviLinkClient(config=_config(url)) as client:
        with pytest.raises(InvalidCredentialsError):
            await client.authenticate("nobody@example.com", "x-password")


async def test_transient_5xx_is_retried_a_bounded_number_of_times() -> None:
    async with fake_rest(stub_devices(1)) as (fr, url), NaviLinkClient(config=_config(url)) as client:
        fr.fail_next = 2
        await client.authenticate()  # two 503s, then success
        assert fr.calls["user/sign-in"] == 3
        fr.fail_next = 10
        with pytest.raises(APIError) as ei:
            await client.get_devices()
        assert fr.calls["device/list"] == 3  # bounded: 3 attempts, then a clear error
        assert "try again" in str(ei.value)
        fr.fail_next = 10
        with pytest.raises(AuthenticationError):
            await client.auth.aws_credentials(force=True)
        assert fr.calls["user/sign-in"] == 6
        assert not client.auth.rejected  # a network failure is not a rejected password


async def test_rest_401_refreshes_once_and_retries(caplog: pytest.LogCaptureFixture) -> None:
    async with fake_rest(stub_devices(2)) as (fr, url), NaviLinkClient(config=_config(url)) as client:
        await client.authenticate()
        old_access = client.auth.tokens.access_token  # type: ignore[union-attr]
        fr.tokens.expire(rest=True, aws=False)  # server-side expiry the client cannot know about
        # several concurrent calls hitting 401 share one serialised refresh
        results = await asyncio.gather(*(client.get_devices() for _ in range(4)))
        assert all(len(r) == 2 for r in results)
        assert fr.calls["auth/refresh"] == 1
        assert client.auth.tokens.access_token != old_access  # type: ignore[union-attr]
        assert client.auth.tokens.refresh_token  # type: ignore[union-attr]
        # a refresh token the server no longer accepts: fall back to one full sign-in
        fr.tokens.expire(rest=True, aws=False)
        fr.tokens._refresh.clear()
        await client.get_devices()
        assert fr.calls["user/sign-in"] == 2


async def test_rest_401_after_refresh_is_an_api_error() -> None:
    async with fake_rest(stub_devices(1)) as (fr, url), NaviLinkClient(config=_config(url)) as client:
        await client.authenticate()
        fr.unauthorized_status = 403
        fr.forbidden.add("device/list")
        with pytest.raises(APIError) as ei:
            await client.get_devices()
        assert ei.value.status == 403 and fr.calls["auth/refresh"] == 0


async def test_access_token_is_refreshed_before_it_runs_out() -> None:
    async with fake_rest(stub_devices(1)) as (fr, url):
        fr.tokens.authentication_s = 1  # renewal is due min(60 s, half the life) before expiry
        async with NaviLinkClient(config=_config(url)) as client:
            await client.authenticate()
            await asyncio.sleep(0.6)
            await client.get_devices()
            assert fr.calls["auth/refresh"] == 1  # refreshed before the call, no 401 needed
            assert fr.calls["device/list"] == 1


async def test_aws_credentials_near_expiry_trigger_a_full_sign_in() -> None:
    async with fake_rest(stub_devices(1)) as (fr, url):
        fr.tokens.authorization_s = 3600
        async with NaviLinkClient(config=_config(url)) as client:
            await client.authenticate()
            tokens, renewed = await client.auth.aws_credentials()
            assert not renewed and fr.calls["user/sign-in"] == 1
            # pretend the keys are 4 minutes from expiry (inside the 5-minute margin)
            client.auth.tokens = Tokens(**{**tokens.__dict__,
                                           "aws_expires_at": datetime.now(UTC) + timedelta(minutes=4)})
            tokens2, renewed = await client.auth.aws_credentials()
            assert renewed and fr.calls["user/sign-in"] == 2
            assert tokens2.access_key_id != tokens.access_key_id and tokens2.aws_valid()


async def test_secrets_stay_out_of_reprs_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with fake_rest(stub_devices(1)) as (fr, url):
        cfg = _config(url)
        async with NaviLinkClient(config=cfg) as client:
            await client.authenticate()
            fr.tokens.expire(rest=True, aws=False)
            devices = await client.get_devices()  # a 401 and a refresh, all logged at DEBUG
            assert fr.calls["auth/refresh"] == 1
            t = client.auth.tokens
            assert t is not None
            secrets = [PASSWORD, t.access_token, t.refresh_token, t.id_token, t.access_key_id,
                       t.secret_key, t.session_token]
            texts = [repr(client), repr(client.auth), repr(t), str(t), repr(cfg), repr(devices[0]),
                     repr(client.rest), caplog.text]
            for s in secrets:
                assert s and all(s not in text for text in texts)
