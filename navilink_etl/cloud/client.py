"""``NaviLinkClient``: the async entry point tying sign-in, REST and MQTT together.

    async with NaviLinkClient(config=config) as client:
        await client.authenticate()
        device = (await client.get_devices())[0]
        status = await device.get_status()

AWS IoT allows ``MAX_SUBSCRIPTIONS_PER_CONNECTION`` (50) topic filters per MQTT connection, and each
device takes one (``<gateway>/#``) besides the client's own reply prefix. The client therefore opens
as many ``MqttSession`` s as its devices need (``DEVICES_PER_CONNECTION`` each, in listing order;
client ids ``<client_id>``, ``<client_id>-c1``, ...), each with its own reconnect supervisor, and a
device's requests go out on (and name as reply address) the connection its subscription is on.
"""

from __future__ import annotations

import asyncio
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

MAX_SUBSCRIPTIONS_PER_CONNECTION = 50  # AWS IoT Core quota (subscriptions per connection)
DEVICES_PER_CONNECTION = MAX_SUBSCRIPTIONS_PER_CONNECTION - 1  # one filter is the client's reply prefix


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
                 password: str | SecretStr | None = None, client_id: str | None = None,
                 devices_per_connection: int = DEVICES_PER_CONNECTION,
                 device_filter: Callable[[str], bool] | None = None) -> None:
        """``device_filter(mac)`` False leaves a listed device out of ``devices`` (and unsubscribed):
        a collector shard keeps only the devices it owns (counted in ``filtered_out``)."""
        self.config = config if config is not None else load_config()
        self._email = email or self.config.email
        pw = password if password is not None else self.config.password
        self._password: SecretStr | None = (
            pw if isinstance(pw, SecretStr) or pw is None else SecretStr(str(pw)))
        self.client_id = client_id or self.config.client_id or new_client_id()
        if devices_per_connection < 1:
            raise ValueError("devices_per_connection must be at least 1")
        self.devices_per_connection = devices_per_connection
        self.device_filter = device_filter
        self.filtered_out = 0  # devices the last get_devices() left to other shards
        self._session: aiohttp.ClientSession | None = None
        self._auth: Authenticator | None = None
        self._rest: RestClient | None = None
        self._mqtt: MqttSession | None = None  # the first connection (client_id)
        self._sessions: list[MqttSession] = []  # every connection, the first one first
        self._placed: dict[str, int] = {}  # MAC -> index of the connection holding its subscription
        self._load: list[int] = []  # devices per connection
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
        self._sessions, self._placed, self._load = [], {}, []
        self._mqtt = self._new_session()

    def _new_session(self) -> MqttSession:
        assert self._auth is not None
        i = len(self._sessions)
        sess = MqttSession(self.config, self._auth, self.client_id if i == 0 else f"{self.client_id}-c{i}")
        for cb in self._msg_listeners:
            sess.add_message_listener(cb)
        for ccb in self._conn_listeners:
            sess.add_connection_listener(ccb)
        self._sessions.append(sess)
        self._load.append(0)
        return sess

    async def close(self) -> None:
        """Close MQTT and HTTP and forget the tokens (they leave the redaction registry too)."""
        for sess in self._sessions:
            await sess.close()
        if self._session is not None:
            await self._session.close()
        if self._auth is not None:
            self._auth.forget()
        self._session = self._auth = self._rest = self._mqtt = None
        self._sessions, self._placed, self._load = [], {}, []

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
        if self.device_filter is not None:
            kept = [d for d in devices if self.device_filter(d.mac)]
            self.filtered_out = len(devices) - len(kept)
            devices = kept
        self.devices, self.skipped = devices, skipped
        for s in skipped:
            log.warning("device list entry %d skipped: %s", s.index, s.reason)
            for cb in list(self._skip_listeners):
                try:
                    cb(s)
                except Exception:
                    log.exception("skipped-device listener failed")
        if any(m.started for m in self._sessions):
            for d in devices:
                await self._place(d.mac)
        return devices

    # --- MQTT ---------------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Open every MQTT connection the listed devices need now (requests open them on demand
        otherwise); the connections are made side by side. Raises the first failure."""
        self._require_open()
        await self._ensure_auth()
        for d in self.devices:
            await self._place(d.mac)
        results = await asyncio.gather(*(m.ensure_connected() for m in self._sessions), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _place(self, mac: str) -> MqttSession:
        """The connection holding ``mac``'s subscription; a new device joins the first connection
        with room (a new connection when all are full) and is subscribed there."""
        self._require_open()
        i = self._placed.get(mac)
        if i is None:
            i = next((j for j, n in enumerate(self._load) if n < self.devices_per_connection), None)
            if i is None:
                self._new_session()
                i = len(self._sessions) - 1
            self._placed[mac] = i
            self._load[i] += 1
            await self._sessions[i].add_device(mac)
        return self._sessions[i]

    async def _mqtt_for(self, device: NaviLinkDevice) -> MqttSession:
        self._require_open()
        await self._ensure_auth()
        if self._mqtt is not None and not self._mqtt.started:
            for d in self.devices:  # every listed device: the collector wants all pushes
                await self._place(d.mac)
        mqtt = await self._place(device.mac)
        await mqtt.ensure_connected()
        return mqtt

    def client_id_for(self, mac: str) -> str:
        """The client id of the connection ``mac``'s requests go out on (their reply address)."""
        i = self._placed.get(mac)
        return self._sessions[i].client_id if i is not None and i < len(self._sessions) else self.client_id

    @property
    def client_ids(self) -> list[str]:
        """Client ids of every connection opened so far (the first is ``client_id``)."""
        return [m.client_id for m in self._sessions] or [self.client_id]

    @property
    def sessions(self) -> list[MqttSession]:
        return list(self._sessions)

    @property
    def connected(self) -> bool:
        """Every connection is up (a device on a connection that is down cannot be polled)."""
        return bool(self._sessions) and all(m.connected for m in self._sessions)

    @property
    def mqtt(self) -> MqttSession:
        return self._require_open()[2]

    def add_message_listener(self, cb: MessageListener) -> Callable[[], None]:
        """``cb(topic, payload, received_at)`` on the event loop for every MQTT message received."""
        self._msg_listeners.append(cb)
        for m in self._sessions:
            m.add_message_listener(cb)
        return lambda: self._remove_listener(self._msg_listeners, cb)

    def add_connection_listener(self, cb: ConnectionListener) -> Callable[[], None]:
        """``cb(event, detail)`` for connected, interrupted, resumed, reconnect_failed,
        resubscribed, credentials_renewed and auth_failed."""
        self._conn_listeners.append(cb)
        for m in self._sessions:
            m.add_connection_listener(cb)
        return lambda: self._remove_listener(self._conn_listeners, cb)

    def add_skip_listener(self, cb: SkipListener) -> Callable[[], None]:
        """``cb(SkippedDevice)`` for each device-list entry ``get_devices`` leaves out."""
        self._skip_listeners.append(cb)
        return lambda: self._remove_listener(self._skip_listeners, cb)

    def _remove_listener(self, registry: list[Any], cb: Any) -> None:
        if cb in registry:
            registry.remove(cb)
        for m in self._sessions:
            m.remove_listener(cb)

    def device(self, mac: str) -> NaviLinkDevice | None:
        """The listed device with this MAC (any case or separators), else None."""
        want = normalize_mac(mac)
        return next((d for d in self.devices if d.mac == want), None)


def _raw_mac(item: Any) -> str | None:
    info = item.get("deviceInfo") if isinstance(item, dict) else None
    raw = info.get("macAddress") if isinstance(info, dict) else None
    return None if raw is None else repr(raw)[:40]
