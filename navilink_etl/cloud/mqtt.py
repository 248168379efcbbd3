"""MQTT over SigV4 WebSocket to AWS IoT: connect, subscribe, request/reply by sessionID, reconnect.

awscrt calls back on its own threads; everything is handed to the event loop with
``call_soon_threadsafe`` and its futures are awaited with ``asyncio.wrap_future``. One supervisor
task owns recovery (docs/protocol.md 7.4-7.6): it waits briefly for the SDK's own resume, then
rebuilds the connection (closing the old one first, re-signing in when the AWS keys are stale)
with exponential backoff 1-120 s and +-50 % jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from awscrt import auth as crt_auth
from awscrt import mqtt as crt_mqtt
from awsiot import mqtt_connection_builder

from ..config import NaviLinkConfig
from ..errors import (
    AuthenticationError,
    InvalidCredentialsError,
    NaviLinkConnectionError,
    PayloadError,
    RequestTimeoutError,
)
from ..protocol import client_subscription, device_subscription
from ..status import Envelope, parse_message
from .auth import Authenticator, Tokens

log = logging.getLogger(__name__)

# A listener may return the Envelope it parsed: the reply matching then uses it instead of parsing
# the same bytes again (the collector's ingest does; anything else is ignored).
MessageListener = Callable[[str, bytes, datetime], object]
ConnectionListener = Callable[[str, str], None]
CONNECTION_EVENTS = ("connected", "interrupted", "resumed", "reconnect_failed", "resubscribed",
                     "credentials_renewed", "auth_failed")

BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 120.0
ACK_TIMEOUT_S = 30.0  # longest wait for any broker acknowledgement (half-open TCP, docs/protocol.md 7.7)
KEEP_ALIVE_S = 60
RESIGN_EVERY = 10  # full rebuild with a fresh sign-in every 10th failed attempt (docs/protocol.md 7.5)


def new_client_id() -> str:
    """A unique id per client instance: AWS IoT allows one live connection per id."""
    return f"navilink-etl-{secrets.token_hex(4)}"


_last_session_ms = 0


def new_session_id() -> str:
    """Millisecond-epoch string like the app's, bumped so that it is unique within the process."""
    global _last_session_ms
    _last_session_ms = max(int(time.time() * 1000), _last_session_ms + 1)
    return str(_last_session_ms)


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential 1 s .. 120 s, each with +-50 % jitter so fleets do not reconnect in waves."""
    base = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** max(attempt, 0))
    return base * (rng or random).uniform(0.5, 1.5)


@dataclass
class _Pending:
    future: asyncio.Future[tuple[Envelope, bytes, datetime]]
    mac: str
    kind: str  # expected Envelope.kind: status | feature | energy
    months: tuple[int, tuple[int, ...]] | None = None  # an energy request's (year, months)


class MqttSession:
    """One logical MQTT session that survives interruptions, rebuilds and credential renewals."""

    def __init__(self, config: NaviLinkConfig, auth: Authenticator, client_id: str) -> None:
        self._config = config
        self._auth = auth
        self.client_id = client_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: crt_mqtt.Connection | None = None
        self._gen = 0  # connection generation: callbacks from older connections are ignored
        self._connected = False
        self._link = asyncio.Event()  # the transport is connected
        self._up = asyncio.Event()  # connected and subscribed: requests may publish
        self._wake = asyncio.Event()
        self._closing = False
        self._connect_lock = asyncio.Lock()
        self._supervisor: asyncio.Task[None] | None = None
        self._topics: set[str] = {client_subscription(client_id)}
        self._subscribed: set[str] = set()
        self._pending: dict[str, _Pending] = {}
        self._msg_listeners: list[MessageListener] = []
        self._conn_listeners: list[ConnectionListener] = []
        self._auth_failure: InvalidCredentialsError | None = None
        self._force_sign_in = False
        self._renew_failures = 0
        self.resume_grace_s = 5.0  # how long the SDK's own auto-reconnect gets before a rebuild
        self.stats = {"messages": 0, "rebuilds": 0, "resumes": 0, "interruptions": 0}

    def __repr__(self) -> str:
        return f"MqttSession(client_id={self.client_id!r}, connected={self._connected})"

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def started(self) -> bool:
        return self._conn is not None or self._supervisor is not None

    # --- listeners --------------------------------------------------------------------------------
    def add_message_listener(self, cb: MessageListener) -> Callable[[], None]:
        self._msg_listeners.append(cb)
        return lambda: self.remove_listener(cb)

    def add_connection_listener(self, cb: ConnectionListener) -> Callable[[], None]:
        self._conn_listeners.append(cb)
        return lambda: self.remove_listener(cb)

    def remove_listener(self, cb: Callable[..., object]) -> None:
        if cb in self._msg_listeners:
            self._msg_listeners.remove(cb)
        if cb in self._conn_listeners:
            self._conn_listeners.remove(cb)  # type: ignore[arg-type]

    def _emit(self, event: str, detail: str = "") -> None:
        log.info("mqtt %s: %s", event, detail)
        for cb in list(self._conn_listeners):
            try:
                cb(event, detail)
            except Exception:
                log.exception("connection listener %r failed on %s", cb, event)

    # --- lifecycle --------------------------------------------------------------------------------
    async def ensure_connected(self) -> None:
        """Make the first connection and start the supervisor, which owns every later one."""
        if self._closing:
            raise NaviLinkConnectionError("the client is closed")
        if self._supervisor is not None:
            if self._auth_failure is not None and not self._auth.rejected:
                self._auth_failure = None  # the caller signed in again explicitly: recover now
                self._wake.set()
            return
        async with self._connect_lock:
            if self._supervisor is not None:
                return
            self._loop = asyncio.get_running_loop()
            try:
                await self._rebuild(initial=True)
            except InvalidCredentialsError as exc:
                self._auth_failure = exc
                self._start_supervisor()
                raise
            except Exception:
                self._start_supervisor()  # keeps trying in the background; this caller learns now
                self._wake.set()
                raise
            self._start_supervisor()

    def _start_supervisor(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name="navilink-mqtt-supervisor")

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
            self._supervisor = None
        conn, self._conn = self._conn, None
        self._gen += 1
        self._set_down()
        if conn is not None:
            await self._disconnect(conn)
        for p in self._pending.values():
            if not p.future.done():
                p.future.set_exception(NaviLinkConnectionError("client closed"))
        self._pending.clear()

    async def add_device(self, mac: str) -> None:
        topic = device_subscription(mac)
        self._topics.add(topic)
        if self._connected and topic not in self._subscribed:
            await self._subscribe_all()

    # --- connection building ---------------------------------------------------------------------
    def _build(self, tokens: Tokens, gen: int) -> crt_mqtt.Connection:
        creds = crt_auth.AwsCredentialsProvider.new_static(
            tokens.access_key_id, tokens.secret_key, tokens.session_token)
        kwargs: dict[str, Any] = {
            "endpoint": self._config.iot_endpoint,
            "region": self._config.iot_region,
            "credentials_provider": creds,
            "client_id": self.client_id,
            "clean_session": True,
            "keep_alive_secs": KEEP_ALIVE_S,
            "protocol_operation_timeout_ms": int(ACK_TIMEOUT_S * 1000),
            "tcp_connect_timeout_ms": 10_000,
            "reconnect_min_timeout_secs": int(BACKOFF_MIN_S),
            "reconnect_max_timeout_secs": int(BACKOFF_MAX_S),
            "enable_metrics_collection": False,
            "on_connection_interrupted": lambda connection, error, **kw: self._from_thread(
                self._on_interrupted, gen, str(error)),
            "on_connection_resumed": lambda connection, return_code, session_present, **kw:
                self._from_thread(self._on_resumed, gen, bool(session_present)),
            "on_connection_failure": lambda connection, callback_data, **kw: self._from_thread(
                self._on_sdk_failure, gen, str(getattr(callback_data, "error", ""))),
        }
        if self._config.iot_port is not None:
            kwargs["port"] = self._config.iot_port
        if self._config.ca_file is not None:
            kwargs["ca_filepath"] = str(self._config.ca_file)
        conn = mqtt_connection_builder.websockets_with_default_aws_signing(**kwargs)
        conn.on_message(lambda topic, payload, **kw: self._on_message_thread(gen, topic, payload))
        return conn

    async def _rebuild(self, *, initial: bool = False) -> None:
        """Close the old connection, renew credentials if stale, connect and subscribe."""
        tokens, renewed = await self._auth.aws_credentials(force=self._force_sign_in)
        self._force_sign_in = False
        if renewed:
            self._emit("credentials_renewed", "signed in again for new AWS IoT credentials")
        old, self._conn = self._conn, None
        self._gen += 1
        gen = self._gen
        self._set_down()
        if old is not None:
            await self._disconnect(old)
        conn = self._build(tokens, gen)
        try:
            result = await asyncio.wait_for(_crt(conn.connect()), ACK_TIMEOUT_S)
        except BaseException as exc:
            await self._disconnect(conn)
            if isinstance(exc, asyncio.CancelledError):
                raise
            if "UPGRADE" in str(exc).upper():  # STS keys refused at the WebSocket upgrade
                self._force_sign_in = True
            raise NaviLinkConnectionError(
                f"MQTT connection to {self._config.iot_endpoint} failed: {exc or type(exc).__name__}",
                endpoint=self._config.iot_endpoint, port=self._config.iot_port,
            ) from None
        self._conn = conn
        self._subscribed.clear()
        self._connected = True
        self._link.set()
        if not initial:
            self.stats["rebuilds"] += 1
        self._emit("connected", f"client_id={self.client_id} session_present={result.get('session_present')}")
        await self._subscribe_all()  # before any request publishes, or its reply could be missed
        self._up.set()
        if not initial:
            self._emit("resubscribed", f"{len(self._subscribed)} topics")

    async def _disconnect(self, conn: crt_mqtt.Connection) -> None:
        try:
            await asyncio.wait_for(_crt(conn.disconnect()), 5.0)
        except Exception as exc:
            log.debug("disconnect of an old connection: %s", exc)

    async def _subscribe_all(self) -> None:
        conn, gen = self._conn, self._gen
        if conn is None:
            return
        for topic in sorted(self._topics - self._subscribed):
            try:
                fut, _ = conn.subscribe(topic, crt_mqtt.QoS.AT_LEAST_ONCE)
                res = await asyncio.wait_for(_crt(fut), ACK_TIMEOUT_S)
                if res.get("qos") is None:
                    raise NaviLinkConnectionError(f"broker refused the subscription to {topic}")
                if gen == self._gen:  # not a connection replaced meanwhile
                    self._subscribed.add(topic)
            except Exception as exc:  # kept for retry by the supervisor
                log.warning("subscribe %s failed: %s", topic, exc)

    def _set_down(self) -> None:
        self._connected = False
        self._link.clear()
        self._up.clear()

    # --- SDK callbacks (SDK thread -> loop) --------------------------------------------------------
    def _from_thread(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(fn, *args)

    def _on_message_thread(self, gen: int, topic: str, payload: bytes) -> None:
        received_at = datetime.now(UTC)  # stamped on arrival: messages carry no timestamp
        self._from_thread(self._dispatch, topic, bytes(payload), received_at)

    def _on_interrupted(self, gen: int, error: str) -> None:
        if gen != self._gen or self._closing:
            return
        self.stats["interruptions"] += 1
        self._set_down()
        self._emit("interrupted", error)
        self._wake.set()

    def _on_resumed(self, gen: int, session_present: bool) -> None:
        if gen != self._gen or self._closing:
            return
        self.stats["resumes"] += 1
        self._connected = True
        self._link.set()
        if session_present:
            self._up.set()
        else:
            self._subscribed.clear()  # a new session holds no subscriptions: the supervisor
            # resubscribes, then opens the gate for requests
        self._emit("resumed", f"session_present={session_present}")
        self._wake.set()

    def _on_sdk_failure(self, gen: int, error: str) -> None:
        log.debug("SDK connection attempt failed: %s", error)
        if gen == self._gen and "UPGRADE" in error.upper():
            self._force_sign_in = True

    # --- supervisor ---------------------------------------------------------------------------------
    def _next_check_s(self) -> float:
        """Sleep until the AWS keys are due for renewal, at most 30 s."""
        tokens = self._auth.tokens
        renew_at = tokens.aws_renew_at if tokens is not None else None
        if renew_at is None:
            return 30.0
        return min(30.0, max(0.5, (renew_at - datetime.now(UTC)).total_seconds()))

    async def _supervise(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_check_s())
            self._wake.clear()
            if self._closing:
                return
            try:
                tokens = self._auth.tokens
                if self._connected and self._auth_failure is None and tokens is not None \
                        and not tokens.aws_valid():
                    # renew before the keys run out: re-sign-in, close the old connection, rebuild
                    try:
                        async with self._connect_lock:
                            await self._rebuild()
                        self._renew_failures = 0
                    except InvalidCredentialsError as exc:
                        self._auth_failure = exc
                        self._emit("auth_failed", str(exc))
                    except AuthenticationError as exc:  # sign-in unreachable: the old keys still work
                        delay = backoff_delay(self._renew_failures)
                        self._renew_failures += 1
                        self._emit("reconnect_failed", f"credential renewal: {exc}; next in {delay:.1f} s")
                        await asyncio.sleep(delay)
                    except NaviLinkConnectionError as exc:
                        self._emit("reconnect_failed", f"rebuild with new credentials: {exc}")
                        await self._recover()
                elif self._connected:
                    if self._topics - self._subscribed:
                        await self._subscribe_all()
                        if not self._topics - self._subscribed:
                            self._emit("resubscribed", f"{len(self._subscribed)} topics")
                    self._up.set()
                elif self._auth_failure is None:
                    await self._recover()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mqtt supervisor step failed")

    async def _recover(self) -> None:
        tokens = self._auth.tokens
        if self._conn is not None and tokens is not None and tokens.aws_valid() \
                and not self._force_sign_in:
            with contextlib.suppress(TimeoutError):  # the SDK reconnects by itself: give it a moment
                await asyncio.wait_for(self._link.wait(), self.resume_grace_s)
        attempt = 0
        renewed_at_once = False
        while not self._closing and not self._connected:
            try:
                if attempt and attempt % RESIGN_EVERY == RESIGN_EVERY - 1:
                    self._force_sign_in = True
                async with self._connect_lock:
                    await self._rebuild()
                return
            except InvalidCredentialsError as exc:
                self._auth_failure = exc
                self._emit("auth_failed", str(exc))
                return
            except Exception as exc:
                if self._force_sign_in and not renewed_at_once:
                    # the broker refused the keys at the upgrade: sign in again now, not after a delay
                    renewed_at_once = True
                    self._emit("reconnect_failed", f"AWS keys refused ({exc}); signing in again")
                    continue
                delay = backoff_delay(attempt)
                attempt += 1
                self._emit("reconnect_failed", f"attempt {attempt}: {exc}; next in {delay:.1f} s")
                await asyncio.sleep(delay)

    # --- messages ---------------------------------------------------------------------------------
    def _dispatch(self, topic: str, payload: bytes, received_at: datetime) -> None:
        self.stats["messages"] += 1
        env: Envelope | None = None
        for cb in list(self._msg_listeners):
            try:
                parsed = cb(topic, payload, received_at)
            except Exception:
                log.exception("message listener %r failed", cb)
                continue
            if isinstance(parsed, Envelope):
                env = parsed
        if not self._pending:
            return  # nothing awaits a reply: no need to parse (the listeners store what they keep)
        if env is None:
            try:
                env = parse_message(payload)
            except PayloadError:
                return  # requests (ours echoed by G/#) and malformed messages: listeners saw them
        pending = self._match(env)
        if pending is not None:
            pending.future.set_result((env, payload, received_at))

    def _match(self, env: Envelope) -> _Pending | None:
        """The pending request a reply answers: by sessionID, else (DID, energy) by MAC and content.

        A reply naming another device never matches. A reply without sessionID or MAC matches only
        when exactly one pending request could have asked for it; an ambiguous one is dropped (both
        requests time out and are retried) rather than filed under the wrong device.
        """
        p = self._pending.get(env.session_id) if env.session_id else None
        if p is not None and p.kind == env.kind and not p.future.done():
            return p if env.mac is None or env.mac == p.mac else None
        if env.kind not in ("feature", "energy"):
            return None  # status/control replies echo their sessionID
        open_ = [q for q in self._pending.values() if q.kind == env.kind and not q.future.done()]
        if env.mac is not None:
            return next((q for q in open_ if q.mac == env.mac), None)
        if env.kind == "energy":
            asked = _energy_months(env.response)
            open_ = [q for q in open_ if asked is None or q.months is None or q.months == asked]
        if len(open_) == 1:
            return open_[0]
        if open_:
            log.warning("a %s reply without device MAC or known sessionID fits %d pending requests: "
                        "dropped (the requests time out and are retried)", env.kind, len(open_))
        return None

    async def request(self, topic: str, message: dict[str, Any], *, mac: str, kind: str,
                      timeout: float) -> tuple[Envelope, bytes, datetime]:  # noqa: ASYNC109
        """Publish ``message`` (QoS 1) and wait for the reply carrying its sessionID."""
        if self._auth_failure is not None and self._auth.rejected:
            raise InvalidCredentialsError(
                "MQTT is down because the cloud rejected the password while renewing credentials; "
                "call authenticate() with the right password", device=mac)
        await self.ensure_connected()
        loop = asyncio.get_running_loop()
        sid = str(message["sessionID"])
        fut: asyncio.Future[tuple[Envelope, bytes, datetime]] = loop.create_future()
        self._pending[sid] = _Pending(fut, mac, kind, _requested_months(message) if kind == "energy" else None)
        published = False
        try:
            async with asyncio.timeout(timeout):
                await self._up.wait()
                conn = self._conn
                if conn is None:
                    raise NaviLinkConnectionError("MQTT connection is being rebuilt; try again")
                pub, _ = conn.publish(topic, orjson.dumps(message), crt_mqtt.QoS.AT_LEAST_ONCE)
                published = True
                await _await_publish(pub)
                return await fut
        except TimeoutError:
            if not published:
                raise NaviLinkConnectionError(
                    f"not connected to the NaviLink MQTT broker within {timeout:g} s "
                    "(reconnecting in the background); try again later", device=mac,
                ) from None
            raise RequestTimeoutError(
                f"no reply from device {mac} within {timeout:g} s", device=mac, topic=topic,
                connected=self._connected,
            ) from None
        finally:
            self._pending.pop(sid, None)


def _requested_months(message: dict[str, Any]) -> tuple[int, tuple[int, ...]] | None:
    req = message.get("request")
    if not isinstance(req, dict) or not isinstance(req.get("year"), int) or not isinstance(req.get("month"), list):
        return None
    return int(req["year"]), tuple(sorted(int(m) for m in req["month"]))


def _energy_months(response: Any) -> tuple[int, tuple[int, ...]] | None:
    """(year, months) an energy reply covers, or None when it does not say clearly."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, list) or not usage:
        return None
    try:
        years = {int(u["year"]) for u in usage}
        months = tuple(sorted(int(u["month"]) for u in usage))
    except (KeyError, TypeError, ValueError):
        return None
    return (years.pop(), months) if len(years) == 1 else None


async def _await_publish(pub: Future[Any]) -> None:
    try:
        await _crt(pub)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise NaviLinkConnectionError(f"publish failed: {exc}") from None


def _crt(fut: Any) -> Any:
    """Await an awscrt concurrent future without cancelling it when we give up waiting: awscrt
    completes it later from its own thread, and a cancelled future makes that raise."""
    return asyncio.shield(asyncio.wrap_future(fut))
