"""The fake NaviLink REST API (``/api/v2.1``): sign-in, refresh, device list/info/firmware/TOU.

Shapes follow the capture (docs/protocol.md sections 1-2): errors on sign-in come back as HTTP 200 with
a body code; a ``Bearer`` prefix, an unknown or expired access token gets 401 (configurable).
Tokens are opaque random strings; AWS credentials are checked by the fake broker.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import string
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..protocol import DEVICE_LIST_PAGE, DEVICE_TYPE, ConnectionStatus
from .hostile import HostileProfile
from .model import DeviceModel

log = logging.getLogger(__name__)

API_PREFIX = "/api/v2.1"
DEFAULT_AUTHENTICATION_S = 3600
DEFAULT_AUTHORIZATION_S = 3600
DEFAULT_REFRESH_S = 30 * 24 * 3600  # Cognito's default; the capture proves >= 10.5 h

# A few plausible places; the capture's city keeps its real trailing space.
_PLACES = (
    ("California", "San Rafael ", 38.0, -122.5), ("Oregon", "Portland", 45.5, -122.7),
    ("Washington", "Seattle", 47.6, -122.3), ("Texas", "Austin", 30.3, -97.7),
    ("Colorado", "Denver", 39.7, -105.0), ("New York", "Albany", 42.7, -73.8),
)  # fmt: skip

# GET /device/tou data from the capture (fixtures/navilink-capture/rest_device_tou_response.json).
_TOU_PERIODS = ((0, 0, 15, 59), (16, 0, 20, 59), (21, 0, 23, 59))
_TOU_PRICES = {3615: ((36261, 46378), (39261, 49378), (36261, 46378)),
               480: ((40378, 50495), (50678, 60795), (40378, 50495))}  # fmt: skip


def captured_tou_data(controller_id: str = "56496061BT22230408") -> dict[str, Any]:
    """The captured PG&E E-TOU-C plan, key order as on the wire."""
    schedule = []
    for season, prices in _TOU_PRICES.items():
        intervals = [
            {"priceMin": lo, "endHour": eh, "priceMax": hi, "week": week, "decimalPoint": 5,
             "startHour": sh, "startMinute": sm, "endMinute": em}
            for week in (124, 130)
            for (sh, sm, eh, em), (lo, hi) in zip(_TOU_PERIODS, prices, strict=True)
        ]  # fmt: skip
        schedule.append({"season": season, "interval": intervals})
    return {
        "registerPath": "bt", "sourceType": "openei",
        "touInfo": {
            "controllerId": controller_id, "manufactureId": "6760E2532669023",
            "name": "E-TOU-C Residential Time of Use Baseline Region V (All Electric Service)",
            "schedule": schedule, "utility": "Pacific Gas & Electric Co", "zipCode": 94595,
        },
    }  # fmt: skip


# --- tokens -------------------------------------------------------------------------------------


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def _fake_jwt(claims: dict[str, Any]) -> str:
    """JWT-shaped but unsigned-in-spirit: nothing should verify it (the real clients don't)."""
    return f"{_b64({'alg': 'RS256', 'kid': 'fake'})}.{_b64(claims)}.{secrets.token_urlsafe(64)}"


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


@dataclass
class _Grant:
    email: str
    expires: float  # time.monotonic()


@dataclass
class _AwsGrant:
    email: str
    secret: str = field(repr=False)
    expires: float = 0.0


class TokenStore:
    """Issued tokens and STS-like AWS credentials; lifetimes in real seconds."""

    def __init__(self) -> None:
        self.authentication_s: float = DEFAULT_AUTHENTICATION_S
        self.authorization_s: float = DEFAULT_AUTHORIZATION_S
        self.refresh_s: float = DEFAULT_REFRESH_S
        self.rotate_refresh = False
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._aws: dict[str, _AwsGrant] = {}
        self._issued: set[str] = set()  # every secret ever handed out, expired or not

    def _jwt_trio(self, email: str, refresh_token: str | None = None) -> dict[str, Any]:
        now = int(time.time())
        exp = now + int(self.authentication_s)
        sub = f"fake-{email}"
        id_token = _fake_jwt({"sub": sub, "email": email, "token_use": "id", "iat": now, "exp": exp})
        access = _fake_jwt({"sub": sub, "token_use": "access", "iat": now, "exp": exp, "jti": secrets.token_hex(8)})
        if refresh_token is None or self.rotate_refresh:
            if refresh_token is not None:
                self._refresh.pop(refresh_token, None)
            refresh_token = secrets.token_urlsafe(96)
            self._refresh[refresh_token] = _Grant(email, time.monotonic() + self.refresh_s)
        self._access[access] = _Grant(email, time.monotonic() + self.authentication_s)
        self._issued.update((access, id_token, refresh_token))
        return {"idToken": id_token, "accessToken": access, "refreshToken": refresh_token,
                "authenticationExpiresIn": int(self.authentication_s)}  # fmt: skip

    def _session_token(self) -> str:
        tok = base64.b64encode(secrets.token_bytes(300)).decode()
        self._issued.add(tok)
        return tok

    def issued_secrets(self) -> set[str]:
        """Every token and AWS secret handed out so far (for tests that no secret leaks)."""
        return set(self._issued)

    def sign_in(self, email: str) -> dict[str, Any]:
        """The captured ``token`` object: JWT trio then the STS trio."""
        token = self._jwt_trio(email)
        akid = "ASIA" + _random(string.ascii_uppercase + string.digits, 16)
        secret = _random(string.ascii_letters + string.digits + "/+", 40)
        self._aws[akid] = _AwsGrant(email, secret, time.monotonic() + self.authorization_s)
        self._issued.update((akid, secret))
        token.update({
            "accessKeyId": akid, "secretKey": secret,
            "sessionToken": self._session_token(),
            "authorizationExpiresIn": int(self.authorization_s),
        })  # fmt: skip
        return token

    def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        grant = self._refresh.get(refresh_token)
        if grant is None or grant.expires <= time.monotonic():
            return None
        return self._jwt_trio(grant.email, refresh_token)

    def user_for(self, access_token: str) -> str | None:
        grant = self._access.get(access_token)
        return grant.email if grant is not None and grant.expires > time.monotonic() else None

    def aws_secret(self, akid: str) -> str | None:
        """The secret for a valid (issued, unexpired) access key id, else None."""
        grant = self._aws.get(akid)
        return grant.secret if grant is not None and grant.expires > time.monotonic() else None

    def expire(self, *, rest: bool = True, aws: bool = True) -> None:
        past = time.monotonic() - 1
        if rest:
            for g in self._access.values():
                g.expires = past
        if aws:
            for a in self._aws.values():
                a.expires = past


# --- the app ------------------------------------------------------------------------------------


def _ok(data: Any = ..., status: int = 200) -> web.Response:
    body: dict[str, Any] = {"code": 200, "msg": "SUCCESS"}
    if data is not ...:
        body["data"] = data
    return web.json_response(body, status=status)


def _err(code: int, msg: str, status: int = 200) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


def bad_request() -> web.Response:
    return _err(400, "COMMON_BAD_REQUEST")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AuthedHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


class FakeRest:
    """The REST half of the fake cloud. ``app`` is an aiohttp application; faults are attributes."""

    def __init__(
        self,
        devices: Sequence[DeviceModel],
        accounts: dict[str, str],
        tokens: TokenStore,
        is_online: Callable[[str], bool],
    ) -> None:
        self.devices = devices
        self.accounts = accounts
        self.tokens = tokens
        self._is_online = is_online
        # faults and switches
        self.fail_next = 0
        self.fail_status = 503
        self.delay_s = 0.0
        self.forbidden: set[str] = set()  # route names, e.g. {"device/info"}
        self.unauthorized_status = 401
        self.unauthorized_body: dict[str, Any] = {"code": 401, "msg": "UNAUTHORIZED", "data": None}
        self.lock_after: int | None = None
        self.bad_tries: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()  # route name -> count (for tests and logs)
        self.hostile: HostileProfile | None = None  # bad list entries and TOU plans when set
        # MAC -> the account (e-mail) it belongs to; devices not named here are on every account
        self.owners: dict[str, str] = {}
        self.app = self._build_app()

    def _visible(self, email: str) -> list[DeviceModel]:
        return [d for d in self.devices if self.owners.get(d.mac, email) == email]

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults])
        public: dict[str, Handler] = {"user/sign-in": self.sign_in, "auth/refresh": self.refresh}
        private: dict[str, AuthedHandler] = {
            "device/list": self.device_list, "device/info": self.device_info,
            "device/firmware/info": self.firmware_info, "app/update-push-token": self.push_token,
        }  # fmt: skip
        for name, h in public.items():
            app.router.add_post(f"{API_PREFIX}/{name}", h)
        for name, ah in private.items():
            app.router.add_post(f"{API_PREFIX}/{name}", self._authed(name, ah))
        app.router.add_get(f"{API_PREFIX}/device/tou", self._authed("device/tou", self.device_tou))
        return app

    @web.middleware
    async def _faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.path.removeprefix(API_PREFIX + "/")
        self.calls[route] += 1
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        if self.fail_next > 0:
            self.fail_next -= 1
            return _err(self.fail_status, "SERVICE_UNAVAILABLE" if self.fail_status == 503 else "INTERNAL_SERVER_ERROR",
                        status=self.fail_status)  # fmt: skip
        return await handler(request)

    def _authed(self, name: str, handler: AuthedHandler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            token = request.headers.get("authorization", "")
            email = self.tokens.user_for(token) if token and not token.startswith("Bearer ") else None
            if email is None:
                return web.json_response(self.unauthorized_body, status=self.unauthorized_status)
            if name in self.forbidden:
                return web.json_response({"code": 403, "msg": "FORBIDDEN", "data": None}, status=403)
            return await handler(request, email)

        return wrapped

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None

    # -- public endpoints

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if body is None or not isinstance(body.get("userId"), str) or not isinstance(body.get("password"), str):
            return bad_request()
        email, password = body["userId"], body["password"]
        if email not in self.accounts:
            return _err(1002, "USER_NOT_FOUND")  # code inferred; [hb] saw the msg
        if self.lock_after is not None and self.bad_tries[email] >= self.lock_after:
            return _err(1003, "USER_LOCKED")  # invented: no capture of a locked account
        if not secrets.compare_digest(password.encode(), self.accounts[email].encode()):
            self.bad_tries[email] += 1
            return _err(1001, "INVALID_USER_PASSWORD")
        self.bad_tries.pop(email, None)
        i = sorted(self.accounts).index(email)
        data = {
            "userInfo": {"userType": "O", "userFirstName": "Demo", "userLastName": "User",
                         "userStatus": "NORMAL", "userSeq": 36283 + i},
            "legal": [_legal("pp", "02.00"), _legal("tc", "01.00")],
            "token": self.tokens.sign_in(email),
        }  # fmt: skip
        return _ok(data)

    async def refresh(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        if body is None or not isinstance(body.get("refreshToken"), str):
            return bad_request()
        data = self.tokens.refresh(body["refreshToken"])
        if data is None:
            return web.json_response(self.unauthorized_body, status=self.unauthorized_status)
        return _ok(data)

    # -- authenticated endpoints

    def _place(self, device: DeviceModel) -> tuple[str, str, float, float]:
        return _PLACES[list(self.devices).index(device) % len(_PLACES)]

    def _connected(self, device: DeviceModel) -> int:
        return int(ConnectionStatus.ONLINE if self._is_online(device.mac) else ConnectionStatus.OFFLINE)

    def _find(self, body: dict[str, Any] | None, email: str) -> DeviceModel | None:
        mac = body.get("macAddress") if body else None
        return next((d for d in self._visible(email) if d.mac == mac), None)

    async def device_list(self, request: web.Request, email: str) -> web.StreamResponse:
        body = await self._body(request) or {}
        offset, count = body.get("offset", 0), body.get("count", DEVICE_LIST_PAGE)
        if not (isinstance(offset, int) and isinstance(count, int)) or offset < 0 or count < 0:
            return bad_request()
        page = self._visible(email)[offset : offset + min(count, DEVICE_LIST_PAGE)]
        data = []
        for d in page:
            state, city, _, _ = self._place(d)
            data.append({
                "deviceInfo": {"homeSeq": d.home_seq, "macAddress": d.mac,
                               "additionalValue": d.additional_value, "deviceType": DEVICE_TYPE,
                               "deviceName": d.device_name, "connected": self._connected(d)},
                "location": {"state": state, "city": city, "address": f"{100 + d.home_seq % 900} Simulated Way"},
            })  # fmt: skip
        if self.hostile is not None and len(page) < DEVICE_LIST_PAGE:  # on the last page
            data.extend(self.hostile.device_list_extras(data or [{"deviceInfo": {"macAddress": "0" * 12}}]))
        return _ok(data)

    async def device_info(self, request: web.Request, email: str) -> web.StreamResponse:
        d = self._find(await self._body(request), email)
        if d is None:
            return _err(404, "NOT_FOUND")
        state, city, lat, lon = self._place(d)
        return _ok({
            # no macAddress / additionalValue here [capture]
            "deviceInfo": {"homeSeq": d.home_seq, "deviceName": d.device_name, "deviceType": DEVICE_TYPE,
                           "installType": "R", "connected": self._connected(d)},
            "location": {"state": state, "city": city, "address": f"{100 + d.home_seq % 900} Simulated Way",
                         "latitude": lat, "longitude": lon, "altitude": None},
            "installer": {"installerId": None, "installerFirstName": None, "installerLastName": None,
                          "installerPhoneNumber": None},
            "alarmInfo": {"isEtcAlarm": 1, "isErrorAlarm": 1},
            "descaling": {"descalingStartTime": None, "descalingEndTime": None},
        })  # fmt: skip

    async def firmware_info(self, request: web.Request, email: str) -> web.StreamResponse:
        d = self._find(await self._body(request), email)
        if d is None:
            return _err(404, "NOT_FOUND")
        controller = 0x0A010000 if d.firmware == "2025-09" else 0x0B010000
        rows = ((33556241, controller, 0), (268435985, 34013184, None), (268435761, 60454, None),
                (268435777, 60454, None))  # fmt: skip
        firmwares = [
            {"macAddress": d.mac, "additionalValue": d.additional_value, "deviceType": DEVICE_TYPE,
             "deviceGroup": None, "curSwCode": code, "curVersion": ver, "downloadedVersion": dl}
            for code, ver, dl in rows
        ]  # fmt: skip
        return _ok({"firmwares": firmwares})

    async def device_tou(self, request: web.Request, email: str) -> web.StreamResponse:
        d = next((x for x in self._visible(email) if x.mac == request.query.get("macAddress")), None)
        if d is None:
            return _err(404, "NOT_FOUND")
        serial = d.feature().get("controllerSerialNumber") or "56496061BT22230408"
        plan = captured_tou_data(str(serial))
        if self.hostile is not None and self.devices:
            plan = self.hostile.tou_reply(d.mac, self.devices[0].mac, plan)
        return _ok(plan)

    async def push_token(self, request: web.Request, email: str) -> web.StreamResponse:
        return _ok()  # no "data" key [capture]


def _legal(kind: str, version: str) -> dict[str, Any]:
    return {"legalType": kind, "userVersion": version, "userAgree": 1, "version": version,
            "agreement": 1, "mandatory": 1, "reagree": 2,
            "url": f"https://privacy.navilink.local/{kind}", "description": "Initial legal description.",
            "language": "US", "revisionAt": 1682640000000}  # fmt: skip
