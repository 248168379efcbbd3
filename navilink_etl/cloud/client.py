"""``NaviLinkClient``: the async entry point tying sign-in, REST and MQTT together.

    async with NaviLinkClient(config=config) as client:
        await client.authenticate()
        device = (await client.get_devices())[0]
        status = await device.get_status()
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any

import aiohttp
from pydantic import SecretStr

from ..config import NaviLinkConfig, load_config
from ..errors import AuthenticationError, NaviLinkError, PayloadError
from ..identity import normalize_mac
from ..redact import register_password
from .auth import Authenticator
from .device import NaviLinkDevice
from .mqtt import ConnectionListener, MessageListener, MqttSession, new_client_id
from .rest import RestClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedDevice:
    """A device-list entry left out: its position, the MAC as sent (shortened) and why."""

    index: int
    mac: str | None
    reason: str


SkipListener = Callable[[SkippedDevice], None]


def _user_agent() -> str:
    try:
        return f"navilink-etl/{version('navilink-etl')}"
    except PackageNotFoundError:
        return "navilink-etl"


class NaviLinkClient:
    """Async NaviLink cloud client with an explicit lifecycle (``async with``)."""

    def __init__(self, config: NaviLinkConfig | None = None, *, email: str | None = None,
                 password: str | SecretStr | None = None) -> None:
        self.config = config if config is not None else load_config()
        self._email = email or self.config.email
        pw = password if password is not None else self.config.password
        self._password: SecretStr | None = (
            pw if isinstance(pw, SecretStr) or pw is None else SecretStr(str(pw)))
        self.client_id = self.config.client_id or new_client_id()
        self._session: aiohttp.ClientSession | None = None
        self._auth: Authenticator | None = None
        self._rest: RestClient | None = None
        self._mqtt: MqttSession | None = None
        self._msg_listeners: list[MessageListener] = []
        self._conn_listeners: list[ConnectionListener] = []
        self._skip_listeners: list[SkipListener] = []
        self.devices: list[NaviLinkDevice] = []
        self.skipped: list[SkippedDevice] = []  # entries the last get_devices() left out

    def __repr__(self) -> str:
        return (f"NaviLinkClient(email={self._email!r}, client_id={self.client_id!r}, "
                f"authenticated={self.authenticated}, connected={self.connected})")

    # --- lifecycle ----------------------------------------------------------------------------------
    async def __aenter__(self) -> NaviLinkClient:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is not None:
            return
        ua = _user_agent()
        self._session = aiohttp.ClientSession()
        self._auth = Authenticator(self._session, self.config.rest_base_url, ua)
        self._rest = RestClient(self._session, self._auth, self.config.rest_base_url, ua)
        self._mqtt = MqttSession(self.config, self._auth, self.client_id)
        for cb in self._msg_listeners:
            self._mqtt.add_message_listener(cb)
        for ccb in self._conn_listeners:
            self._mqtt.add_connection_listener(ccb)

    async def close(self) -> None:
        """Close MQTT and HTTP and forget the tokens (they leave the redaction registry too)."""
        if self._mqtt is not None:
            await self._mqtt.close()
        if self._session is not None:
            await self._session.close()
        if self._auth is not None:
            self._auth.forget()
        self._session = self._auth = self._rest = self._mqtt = None

    def _require_open(self) -> tuple[Authenticator, RestClient, MqttSession]:
        if self._auth is None or self._rest is None or self._mqtt is None:
            raise NaviLinkError("client is not open: use 'async with NaviLinkClient(...) as client'")
        return self._auth, self._rest, self._mqtt

    # --- auth ---------------------------------------------------------------------------------------
    async def authenticate(self, email: str | None = None,
                           password: str | SecretStr | None = None) -> None:
        """Sign in (defaults from the config); raises ``InvalidCredentialsError`` on a bad password."""
        auth, _, _ = self._require_open()
        email = email or self._email
        pw = password if password is not None else self._password
        if not email or pw is None:
            raise AuthenticationError("no e-mail/password: pass them or set NAVILINK_EMAIL and "
                                      "NAVILINK_PASSWORD")
        self._email = email
        self._password = pw if isinstance(pw, SecretStr) else SecretStr(str(pw))
        register_password(self._password.get_secret_value())  # masked in logs however it was given
        await auth.sign_in(email, self._password)

    @property
    def authenticated(self) -> bool:
        return self._auth is not None and self._auth.tokens is not None

    async def _ensure_auth(self) -> None:
        if not self.authenticated:
            await self.authenticate()

    @property
    def user_id(self) -> str:
        return self._email or ""

    @property
    def user_type(self) -> str:
        return self._auth.user.user_type if self._auth and self._auth.user else "O"

    @property
    def user_seq(self) -> int | None:
        return self._auth.user.user_seq if self._auth and self._auth.user else None

    @property
    def auth(self) -> Authenticator:
        return self._require_open()[0]

    @property
    def rest(self) -> RestClient:
        return self._require_open()[1]

    # --- REST ---------------------------------------------------------------------------------------
    async def get_devices(self) -> list[NaviLinkDevice]:
        """All devices on the account (REST list, all pages); subscribes to them once MQTT is up.

        A malformed entry (wrong types, a MAC that is not 12 hex digits, a MAC listed twice) is
        left out with a warning, kept in ``skipped`` and passed to every skip listener.
        """
        await self._ensure_auth()
        items = await self.rest.list_devices(self.user_id)
        known = {d.mac: d for d in self.devices}
        devices: list[NaviLinkDevice] = []
        skipped: list[SkippedDevice] = []
        for i, item in enumerate(items):
            try:
                dev = NaviLinkDevice(self, item)
                if any(d.mac == dev.mac for d in devices):
                    raise PayloadError(f"MAC {dev.mac} is listed more than once (case or separators "
                                       "differ); the first entry is kept", field="macAddress")
            except PayloadError as exc:
                skipped.append(SkippedDevice(i, _raw_mac(item), exc.message))
                continue
            old = known.get(dev.mac)
            if old is not None:  # keep the cached DID across listings
                dev.feature, dev.last_status = old.feature, old.last_status
            devices.append(dev)
        self.devices, self.skipped = devices, skipped
        for s in skipped:
            log.warning("device list entry %d skipped: %s", s.index, s.reason)
            for cb in list(self._skip_listeners):
                try:
                    cb(s)
                except Exception:
                    log.exception("skipped-device listener failed")
        if self._mqtt is not None and self._mqtt.started:
            for d in devices:
                await self._mqtt.add_device(d.mac)
        return devices

    # --- MQTT ---------------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the MQTT connection now (requests open it on demand otherwise)."""
        _, _, mqtt = self._require_open()
        await self._ensure_auth()
        for d in self.devices:
            await mqtt.add_device(d.mac)
        await mqtt.ensure_connected()

    async def _mqtt_for(self, device: NaviLinkDevice) -> MqttSession:
        _, _, mqtt = self._require_open()
        await self._ensure_auth()
        for mac in {device.mac, *(d.mac for d in self.devices)}:
            await mqtt.add_device(mac)  # every listed device: the collector wants all pushes
        await mqtt.ensure_connected()
        return mqtt

    @property
    def connected(self) -> bool:
        return self._mqtt is not None and self._mqtt.connected

    @property
    def mqtt(self) -> MqttSession:
        return self._require_open()[2]

    def add_message_listener(self, cb: MessageListener) -> Callable[[], None]:
        """``cb(topic, payload, received_at)`` on the event loop for every MQTT message received."""
        self._msg_listeners.append(cb)
        if self._mqtt is not None:
            self._mqtt.add_message_listener(cb)
        return lambda: self._remove_listener(self._msg_listeners, cb)

    def add_connection_listener(self, cb: ConnectionListener) -> Callable[[], None]:
        """``cb(event, detail)`` for connected, interrupted, resumed, reconnect_failed,
        resubscribed, credentials_renewed and auth_failed."""
        self._conn_listeners.append(cb)
        if self._mqtt is not None:
            self._mqtt.add_connection_listener(cb)
        return lambda: self._remove_listener(self._conn_listeners, cb)

    def add_skip_listener(self, cb: SkipListener) -> Callable[[], None]:
        """``cb(SkippedDevice)`` for each device-list entry ``get_devices`` leaves out."""
        self._skip_listeners.append(cb)
        return lambda: self._remove_listener(self._skip_listeners, cb)

    def _remove_listener(self, registry: list[Any], cb: Any) -> None:
        if cb in registry:
            registry.remove(cb)
        if self._mqtt is not None:
            self._mqtt.remove_listener(cb)

    def device(self, mac: str) -> NaviLinkDevice | None:
        """The listed device with this MAC (any case or separators), else None."""
        want = normalize_mac(mac)
        return next((d for d in self.devices if d.mac == want), None)


def _raw_mac(item: Any) -> str | None:
    info = item.get("deviceInfo") if isinstance(item, dict) else None
    raw = info.get("macAddress") if isinstance(info, dict) else None
    return None if raw is None else repr(raw)[:40]
