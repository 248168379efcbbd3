"""NaviLink sign-in and token lifecycle: JWT refresh, AWS credential renewal by re-sign-in.

Quirks (docs/protocol.md 1): errors come as HTTP 200 with a body code; a rejected password is never
retried; ``/auth/refresh`` returns only the JWT trio, so AWS credentials need a full sign-in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from pydantic import SecretStr
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from ..config import require_safe_rest_url
from ..errors import AuthenticationError, InvalidCredentialsError
from ..redact import SecretSet

log = logging.getLogger(__name__)

T = TypeVar("T")

ACCESS_TOKEN_MARGIN = timedelta(seconds=60)  # refresh this long before the JWT runs out
AWS_CREDENTIALS_MARGIN = timedelta(minutes=5)  # re-sign-in this long before the STS keys run out
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30)
RETRY_ATTEMPTS = 3
MAX_LIFETIME_S = 7 * 24 * 3600  # longer "expires in" values are clamped (and absurd ones ignored)
SECRET_NAMES = ("access_token", "refresh_token", "id_token", "access_key_id", "secret_key", "session_token")
_WIRE_NAMES = {"access_token": "accessToken", "refresh_token": "refreshToken", "id_token": "idToken",
               "access_key_id": "accessKeyId", "secret_key": "secretKey", "session_token": "sessionToken"}
_INVALID_MSGS = ("INVALID_USER_PASSWORD", "USER_NOT_FOUND", "USER_LOCKED")


class TransientHTTPError(Exception):
    """A 5xx or a network failure: worth a bounded, backed-off retry."""


def retrying() -> AsyncRetrying:
    """The one retry policy for transient REST failures (never for error envelopes)."""
    return AsyncRetrying(
        retry=retry_if_exception_type((TransientHTTPError, aiohttp.ClientConnectionError, TimeoutError)),
        stop=stop_after_attempt(RETRY_ATTEMPTS),
        wait=wait_exponential_jitter(multiplier=0.5, max=4.0, jitter=0.5),
        reraise=True,
    )


async def with_retries(call: Callable[[], Awaitable[T]]) -> T:
    async for attempt in retrying():
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover


def is_invalid_credentials(code: Any, msg: Any) -> bool:
    """The body says the e-mail/password was rejected (docs/protocol.md 1.5)."""
    text = str(msg or "")
    if code in (1001, 401) or text.upper() in _INVALID_MSGS:
        return True
    low = text.lower()
    return "invalid" in low or "unauthorized" in low or "locked" in low


def _now() -> datetime:
    return datetime.now(UTC)


def _seconds(value: Any, default_s: int = 3600) -> int:
    if isinstance(value, bool):
        return default_s
    try:
        return min(max(int(value), 0), MAX_LIFETIME_S)
    except (TypeError, ValueError, OverflowError):
        return default_s


def _text(tok: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """A credential field as a string; any other type is an ``AuthenticationError`` (value unshown)."""
    key = _WIRE_NAMES[name]
    value = tok.get(key)
    if value is None or (value == "" and not required):
        if required:
            raise AuthenticationError(f"the sign-in reply has no {key}; the cloud's reply is malformed, "
                                      "try again later")
        return None
    if not isinstance(value, str) or not value:
        raise AuthenticationError(f"the sign-in reply's {key} is a {type(value).__name__}, not a string; "
                                  "the cloud's reply is malformed, try again later")
    return value


def _short(value: Any, hide: str | None = None) -> int | str | None:
    """A server ``code``/``msg`` for an error's context: an int as is, else at most 120 characters
    of text without the e-mail."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    text = str(value)[:120]
    return text.replace(hide, "<e-mail>") if hide else text


def _expiry(value: Any) -> datetime:
    return _now() + timedelta(seconds=_seconds(value))


def _lifetime(value: Any) -> timedelta:
    return timedelta(seconds=max(_seconds(value), 1))


@dataclass(frozen=True)
class Tokens:
    """Session tokens. Secrets are excluded from ``repr``; only expiry times show."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    id_token: str = field(repr=False)
    access_expires_at: datetime
    access_key_id: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    aws_expires_at: datetime | None = None
    aws_lifetime: timedelta = timedelta(hours=1)
    access_lifetime: timedelta = timedelta(hours=1)

    def secrets(self) -> dict[str, str | None]:
        """The secret values by name (for the redaction registry)."""
        return {name: getattr(self, name) for name in SECRET_NAMES}

    def access_valid(self) -> bool:
        """False within min(60 s, half its life) of the access token's expiry."""
        return _now() + min(ACCESS_TOKEN_MARGIN, self.access_lifetime / 2) < self.access_expires_at

    @property
    def aws_renew_at(self) -> datetime | None:
        """When to re-sign-in: min(5 min, half their life) before the STS keys expire."""
        if not (self.access_key_id and self.secret_key and self.aws_expires_at):
            return None
        return self.aws_expires_at - min(AWS_CREDENTIALS_MARGIN, self.aws_lifetime / 2)

    def aws_valid(self) -> bool:
        """False when the STS keys are missing or due for renewal (see ``aws_renew_at``)."""
        renew_at = self.aws_renew_at
        return renew_at is not None and _now() < renew_at

    @classmethod
    def from_sign_in(cls, tok: dict[str, Any]) -> Tokens:
        """Tokens from a sign-in reply; a field of the wrong type is an ``AuthenticationError``."""
        aws_s = tok.get("authorizationExpiresIn")
        return cls(
            access_token=_text(tok, "access_token", required=True) or "",
            refresh_token=_text(tok, "refresh_token") or "",
            id_token=_text(tok, "id_token") or "",
            access_expires_at=_expiry(tok.get("authenticationExpiresIn")),
            access_key_id=_text(tok, "access_key_id"),
            secret_key=_text(tok, "secret_key"),
            session_token=_text(tok, "session_token"),
            aws_expires_at=_expiry(aws_s),
            aws_lifetime=_lifetime(aws_s),
            access_lifetime=_lifetime(tok.get("authenticationExpiresIn")),
        )

    def refreshed(self, data: dict[str, Any]) -> Tokens:
        """Apply a refresh reply: keep the old refresh/id token when omitted, keep the AWS keys."""
        return replace(
            self,
            access_token=_text(data, "access_token", required=True) or "",
            refresh_token=_text(data, "refresh_token") or self.refresh_token,
            id_token=_text(data, "id_token") or self.id_token,
            access_expires_at=_expiry(data.get("authenticationExpiresIn")),
            access_lifetime=_lifetime(data.get("authenticationExpiresIn")),
        )


@dataclass(frozen=True)
class UserInfo:
    user_seq: int | None
    user_type: str
    first_name: str | None = None


class Authenticator:
    """Owns the credentials and tokens; every token read goes through here (one lock)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, user_agent: str) -> None:
        self._session = session
        self._base = require_safe_rest_url(base_url).rstrip("/")
        self._ua = user_agent
        self._lock = asyncio.Lock()
        self._email: str | None = None
        self._password: SecretStr | None = None
        self._rejected = False  # a rejected password stops every automatic re-sign-in
        self._secrets = SecretSet()  # the live password and tokens, for log redaction
        self.tokens: Tokens | None = None
        self.user: UserInfo | None = None
        self.sign_in_count = 0
        self.refresh_count = 0

    def __repr__(self) -> str:
        return f"Authenticator(email={self._email!r}, signed_in={self.tokens is not None})"

    @property
    def email(self) -> str | None:
        return self._email

    @property
    def rejected(self) -> bool:
        return self._rejected

    # --- public ----------------------------------------------------------------------------------
    async def sign_in(self, email: str, password: str | SecretStr) -> Tokens:
        """Explicit sign-in with (possibly new) credentials; clears an earlier rejection."""
        secret = password if isinstance(password, SecretStr) else SecretStr(str(password))
        self._secrets.set("password", secret.get_secret_value())
        async with self._lock:
            self._email, self._password, self._rejected = email, secret, False
            return await self._sign_in_locked()

    async def access_token(self) -> str:
        """A valid access token, refreshed proactively before ``authenticationExpiresIn`` ends."""
        tokens = self._require()
        if tokens.access_valid():
            return tokens.access_token
        async with self._lock:
            tokens = self._require()
            if not tokens.access_valid():
                await self._refresh_locked()
            return self._require().access_token

    async def on_unauthorized(self, failed_token: str) -> str:
        """A REST call got 401 with ``failed_token``: refresh once (unless someone already did)."""
        async with self._lock:
            if self._require().access_token == failed_token:
                await self._refresh_locked()
            return self._require().access_token

    async def aws_credentials(self, *, force: bool = False) -> tuple[Tokens, bool]:
        """Tokens with usable AWS keys; re-signs in when they are near expiry (or ``force``).

        Returns (tokens, renewed).
        """
        async with self._lock:
            tokens = self.tokens
            if tokens is not None and tokens.aws_valid() and not force:
                return tokens, False
            return await self._sign_in_locked(), True

    def forget(self) -> None:
        """Sign out locally: drop the tokens and the password, and their redaction entries."""
        self.tokens, self._password = None, None
        self._secrets.clear()

    def _set_tokens(self, tokens: Tokens) -> None:
        self.tokens = tokens
        for name, value in tokens.secrets().items():
            self._secrets.set(name, value)  # replaces the previous value: only live ones are kept

    # --- internals -------------------------------------------------------------------------------
    def _require(self) -> Tokens:
        if self.tokens is None:
            raise AuthenticationError("not signed in: call authenticate() first")
        return self.tokens

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async def call() -> tuple[int, Any]:
            async with self._session.post(
                f"{self._base}{path}", json=body, timeout=HTTP_TIMEOUT,
                headers={"User-Agent": self._ua},
            ) as resp:
                if resp.status >= 500:
                    raise TransientHTTPError(f"HTTP {resp.status} from {path}")
                try:
                    data = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    data = None
                return resp.status, data

        try:
            return await with_retries(call)
        except (TransientHTTPError, aiohttp.ClientError, TimeoutError) as exc:
            raise AuthenticationError(
                f"{path} failed after {RETRY_ATTEMPTS} attempts: {type(exc).__name__}; "
                "check the network and try again", endpoint=path,
            ) from None

    async def _sign_in_locked(self) -> Tokens:
        if self._rejected:
            raise InvalidCredentialsError(
                "sign-in was already rejected for this account; not retrying automatically "
                "(it could lock the account): call authenticate() with the right password",
            )
        if not self._email or self._password is None:
            raise AuthenticationError("no e-mail/password: set NAVILINK_EMAIL and NAVILINK_PASSWORD")
        status, body = await self._post(
            "/user/sign-in", {"userId": self._email, "password": self._password.get_secret_value()}
        )
        self.sign_in_count += 1
        code = body.get("code") if isinstance(body, dict) else None
        msg = body.get("msg") if isinstance(body, dict) else None
        data = body.get("data") if isinstance(body, dict) else None
        tok = None
        if isinstance(data, dict):
            tok = data.get("token") or data.get("tokens")
        if code != 200 or not isinstance(tok, dict) or "accessToken" not in tok:
            if is_invalid_credentials(code, msg) or status == 401:
                self._rejected = True
                shown = _short(msg, self._email)
                log.warning("sign-in rejected (code=%s msg=%s)", _short(code), shown)
                # no e-mail in the message or context: it ends up in the events Parquet
                raise InvalidCredentialsError(
                    "the NaviLink cloud rejected the e-mail or password; fix NAVILINK_EMAIL / "
                    "NAVILINK_PASSWORD (not retried, to avoid locking the account)",
                    code=_short(code), msg=shown,
                )
            raise AuthenticationError(
                "sign-in failed; try again later", status=status, code=_short(code),
                msg=_short(msg, self._email),
            )
        self._set_tokens(Tokens.from_sign_in(tok))
        ui = data.get("userInfo") if isinstance(data, dict) else None
        ui = ui if isinstance(ui, dict) else {}
        seq, utype, first = ui.get("userSeq"), ui.get("userType"), ui.get("userFirstName")
        self.user = UserInfo(
            user_seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            user_type=utype if isinstance(utype, str) and utype else "O",
            first_name=first if isinstance(first, str) else None,
        )
        log.info("signed in (user_seq=%s)", self.user.user_seq)
        return self._require()

    async def _refresh_locked(self) -> None:
        tokens = self._require()
        if tokens.refresh_token:
            status, body = await self._post("/auth/refresh", {"refreshToken": tokens.refresh_token})
            data = body.get("data") if isinstance(body, dict) else None
            if isinstance(body, dict) and body.get("code") == 200 and isinstance(data, dict) \
                    and "accessToken" in data:
                self._set_tokens(tokens.refreshed(data))
                self.refresh_count += 1
                log.debug("access token refreshed")
                return
            log.info("token refresh refused (status=%s code=%s); signing in again", status,
                     _short(body.get("code")) if isinstance(body, dict) else None)
        await self._sign_in_locked()
