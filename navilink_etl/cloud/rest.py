"""NaviLink REST calls: device list (paged), device info, firmware info and TOU plan.

Every reply is the envelope ``{code, msg, data}``; a non-200 code is an ``APIError``, and a 401
triggers exactly one token refresh and one retry (docs/protocol.md 1.5, 2).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from ..errors import APIError
from ..protocol import DEVICE_LIST_PAGE
from .auth import HTTP_TIMEOUT, RETRY_ATTEMPTS, Authenticator, TransientHTTPError, with_retries
from .tou import validate_tou_plan

log = logging.getLogger(__name__)

MAX_PAGES = 5_000  # 100,000 devices (fleet accounts): a guard against a server that never sends a short page


class RestClient:
    """Authenticated REST calls; knows the endpoints and envelopes, nothing about devices."""

    def __init__(self, session: aiohttp.ClientSession, auth: Authenticator, base_url: str,
                 user_agent: str) -> None:
        self._session = session
        self._auth = auth
        self._base = base_url.rstrip("/")
        self._ua = user_agent

    def __repr__(self) -> str:
        return f"RestClient(base_url={self._base!r})"

    async def _once(self, method: str, path: str, token: str, **kw: Any) -> tuple[int, Any]:
        async def call() -> tuple[int, Any]:
            headers = {"authorization": token, "User-Agent": self._ua}  # raw token, no "Bearer"
            async with self._session.request(method, f"{self._base}{path}", headers=headers,
                                             timeout=HTTP_TIMEOUT, **kw) as resp:
                if resp.status >= 500:
                    raise TransientHTTPError(f"HTTP {resp.status}")
                try:
                    body = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    body = None
                return resp.status, body

        try:
            return await with_retries(call)
        except (TransientHTTPError, aiohttp.ClientError, TimeoutError) as exc:
            raise APIError(f"{method} {path} failed after {RETRY_ATTEMPTS} attempts ({exc or type(exc).__name__}); "
                           "the cloud may be down, try again later", endpoint=path) from None

    async def call(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                   params: dict[str, str] | None = None) -> Any:
        """One REST call; returns the envelope's ``data`` (None when the reply has none)."""
        token = await self._auth.access_token()
        status, body = await self._once(method, path, token, json=json, params=params)
        if _unauthorized(status, body):
            log.info("%s %s: 401, refreshing the token once", method, path)
            token = await self._auth.on_unauthorized(token)
            status, body = await self._once(method, path, token, json=json, params=params)
        if not isinstance(body, dict):
            raise APIError(f"{method} {path}: HTTP {status} without a JSON envelope",
                           status=status, endpoint=path)
        code, msg = body.get("code"), body.get("msg")
        if status != 200 or code != 200:
            hint = "sign in again" if _unauthorized(status, body) else "check the request"
            raise APIError(f"{method} {path} failed: {msg or 'error'}; {hint}",
                           status=status, code=code if isinstance(code, int) else None,
                           msg=str(msg) if msg is not None else None, endpoint=path)
        return body.get("data")

    # --- endpoints ---------------------------------------------------------------------------------
    async def list_devices(self, user_id: str) -> list[Any]:
        """All entries, walking ``offset``/``count`` pages of 20 until a short page (unchecked:
        the client validates each entry)."""
        out: list[Any] = []
        for page in range(MAX_PAGES):
            data = await self.call("POST", "/device/list", json={
                "offset": page * DEVICE_LIST_PAGE, "count": DEVICE_LIST_PAGE, "userId": user_id})
            items = _device_items(data)
            out.extend(items)
            if len(items) < DEVICE_LIST_PAGE:
                break
        else:
            log.warning("device list: stopped after %d pages (%d entries); the cloud kept sending full "
                        "pages", MAX_PAGES, len(out))
        return out

    async def device_info(self, user_id: str, mac: str, additional_value: str) -> dict[str, Any]:
        data = await self.call("POST", "/device/info", json={
            "macAddress": mac, "additionalValue": additional_value, "userId": user_id})
        return data if isinstance(data, dict) else {}

    async def firmware_info(self, user_id: str, mac: str, additional_value: str) -> list[dict[str, Any]]:
        data = await self.call("POST", "/device/firmware/info", json={
            "macAddress": mac, "additionalValue": additional_value, "userId": user_id})
        fw = data.get("firmwares") if isinstance(data, dict) else None
        return [f for f in fw if isinstance(f, dict)] if isinstance(fw, list) else []

    async def tou(self, user_id: str, mac: str, additional_value: str, controller_id: str,
                  user_type: str = "O") -> dict[str, Any]:
        """The plan's ``data`` ({} when none); a malformed plan is a ``PayloadError``."""
        data = await self.call("GET", "/device/tou", params={
            "additionalValue": additional_value, "controllerId": controller_id,
            "macAddress": mac, "userId": user_id, "userType": user_type})
        return validate_tou_plan(data, device=mac)


def _unauthorized(status: int, body: Any) -> bool:
    return status == 401 or (isinstance(body, dict) and body.get("code") == 401)


def _device_items(data: Any) -> list[Any]:
    """``data`` is a list; some accounts wrap it under ``deviceList`` or ``devices`` ([hb])."""
    if isinstance(data, dict):
        data = data.get("deviceList", data.get("devices"))
    return list(data) if isinstance(data, list) else []
