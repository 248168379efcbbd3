"""An AWS-IoT look-alike MQTT broker for the fake cloud: amqtt over wss on 127.0.0.1 with SigV4 checks.

The websocket upgrade (``GET /mqtt?X-Amz-...``) must carry an access key id the fake issued and
that has not expired; the signature itself is verified too (switchable). One live connection per
client id (a second CONNECT takes over). At most ``MAX_SUBSCRIPTIONS_PER_CONNECTION`` (50, AWS IoT's
quota) topic filters per client: a SUBSCRIBE beyond it gets the SUBACK failure code 0x80, as AWS
IoT answers. TLS uses a throwaway trustme CA made at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http
import logging
import os
import random
import re
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import trustme
import websockets
from amqtt.adapters import WebSocketsReader, WebSocketsWriter
from amqtt.broker import Broker
from amqtt.contexts import Action, ListenerType
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

log = logging.getLogger(__name__)

MQTT_PATH = "/mqtt"
LISTENER = "wss"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SUBSCRIPTIONS_PER_CONNECTION = 50  # AWS IoT Core: subscriptions per connection (not adjustable)
SUBACK_FAILURE = 0x80

# Given an access key id: its secret if the fake issued it and it is still valid, else None.
CredentialLookup = Callable[[str], str | None]
# Called for every PUBLISH a client sends: (topic, payload).
PublishHook = Callable[[str, bytes], None]


_CLOSED = re.compile(r"(sent|received) 10\d\d|no close frame|Can't read first packet as CONNECT|"
                     r"Failed to initialize client session|No data from|PUBACK (waiter|for unknown)")


class _QuietClosedSockets(logging.Filter):
    """amqtt logs tracebacks when a websocket closes before or during CONNECT, and warns about
    PUBACKs for QoS 1 messages redelivered across a takeover: all harmless here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _CLOSED.search(record.getMessage())


def quiet_amqtt_logs() -> None:
    """Keep amqtt's per-connection chatter out of the logs (warnings and errors still show)."""
    for name in ("amqtt", "amqtt.broker", "amqtt.mqtt.protocol.handler", "transitions"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("amqtt.broker", "amqtt.mqtt.protocol.handler"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietClosedSockets) for f in logger.filters):
            logger.addFilter(_QuietClosedSockets())
    logging.getLogger("websockets.server").setLevel(logging.WARNING)


# --- SigV4 (query-string form, as awscrt signs the websocket upgrade) --------------------------


def _aws_quote(s: str) -> str:
    return quote(s, safe="-_.~")


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Decoded (name, value) pairs of a query string, in order."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def sigv4_query_signature(
    *, secret: str, path: str, params: list[tuple[str, str]], headers: dict[str, str],
    payload_hash: str = EMPTY_SHA256,
) -> str:
    """The SigV4 signature of a presigned ``GET`` (headers named by ``X-Amz-SignedHeaders``).

    ``headers`` maps lowercase names to values. awscrt signs ``connection;host`` for the
    websocket upgrade. ``X-Amz-Signature`` and ``X-Amz-Security-Token`` are excluded: AWS IoT
    appends the token after signing (``omit_session_token``).
    """
    p = dict(params)
    scope_parts = p["X-Amz-Credential"].split("/")  # AKID/date/region/service/aws4_request
    date, region, service = scope_parts[1], scope_parts[2], scope_parts[3]
    signed_names = p.get("X-Amz-SignedHeaders", "host").split(";")
    signed = sorted(
        (_aws_quote(k), _aws_quote(v))
        for k, v in params
        if k not in ("X-Amz-Signature", "X-Amz-Security-Token")
    )
    canonical_query = "&".join(f"{k}={v}" for k, v in signed)
    canonical_headers = "".join(f"{n}:{' '.join(headers.get(n, '').split())}\n" for n in signed_names)
    canonical_request = "\n".join(
        ["GET", path, canonical_query, canonical_headers, ";".join(signed_names), payload_hash]
    )
    scope = "/".join(scope_parts[1:])
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", p["X-Amz-Date"], scope,
         hashlib.sha256(canonical_request.encode()).hexdigest()]
    )  # fmt: skip
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


# --- the broker ---------------------------------------------------------------------------------


class UpgradeAuthenticated(BaseAuthPlugin):
    """Accept every CONNECT: the SigV4 check already happened on the websocket upgrade.

    Unlike amqtt's anonymous plugin it does not mark sessions anonymous, so persistent sessions
    (``clean_session=False``) keep their subscriptions and queued QoS 1 messages as on AWS IoT.
    """

    async def authenticate(self, *, session: Session) -> bool | None:
        return True


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    akid: str | None
    client_id: str | None = None
    opened: float = field(default_factory=time.monotonic)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class _NaviBroker(Broker):
    """amqtt's broker with our websocket server, connection registry, takeover and publish hook."""

    def __init__(self, config: dict[str, Any], owner: FakeBroker) -> None:
        super().__init__(config)
        self._owner = owner
        self._conns: dict[int, _Conn] = {}  # id(writer adapter) -> connection
        self.by_client: dict[str, _Conn] = {}
        self._filter_index: tuple[dict[tuple[str, ...], list[str]], list[str]] | None = None

    async def _create_server_instance(  # type: ignore[override]
        self, listener_name: str, listener_type: ListenerType, address: str | None, port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> Any:
        if listener_type != ListenerType.WS:
            return await super()._create_server_instance(listener_name, listener_type, address, port, ssl_context)
        return await websockets.serve(
            partial(self.ws_connected, listener_name=listener_name),
            address, port, ssl=self._owner.ssl_context,
            subprotocols=[websockets.Subprotocol("mqtt")],
            process_request=self._owner._process_request,
        )  # fmt: skip

    async def ws_connected(self, websocket: ServerConnection, listener_name: str) -> None:
        conn = _Conn(websocket, self._owner._akid_of.pop(websocket, None))
        writer = WebSocketsWriter(websocket)
        self._conns[id(writer)] = conn
        try:
            await self._client_connected(listener_name, WebSocketsReader(websocket), writer)
        except websockets.ConnectionClosed:
            log.debug("websocket closed during the MQTT handshake")
        finally:
            self._conns.pop(id(writer), None)
            if conn.client_id is not None and self.by_client.get(conn.client_id) is conn:
                del self.by_client[conn.client_id]
            conn.done.set()

    async def _initialize_client_session(self, reader: Any, writer: Any, remote_address: str, remote_port: int) -> Any:
        handler, session = await super()._initialize_client_session(reader, writer, remote_address, remote_port)
        conn = self._conns.get(id(writer))
        if conn is not None and session.client_id:
            old = self.by_client.get(session.client_id)
            if old is not None and old is not conn:
                # AWS IoT: one live connection per client id; the newcomer wins.
                log.info("client id takeover: closing the older connection")
                old.ws.transport.abort()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(old.done.wait(), 2.0)
            conn.client_id = session.client_id
            self.by_client[session.client_id] = conn
        return handler, session

    async def _broadcast_message(self, session: Any, topic: str | None, data: Any, force_qos: int | None = None) -> None:
        await super()._broadcast_message(session, topic, data, force_qos)
        hook = self._owner.on_publish
        if session is not None and topic and hook is not None and data is not None:
            try:
                hook(topic, bytes(data))
            except Exception:
                log.exception("publish hook failed for %s", topic)

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        """AWS IoT's per-connection quota: a new filter beyond the limit is refused with 0x80."""
        topic_filter = subscription[0]
        cid = session.client_id
        limit = self._owner.max_subscriptions
        if limit is not None and not any(s.client_id == cid for s, _ in self._subscriptions.get(topic_filter, ())):
            held = sum(1 for subs in self._subscriptions.values() if any(s.client_id == cid for s, _ in subs))
            if held >= limit:
                self._owner.refused_subscriptions += 1
                log.info("subscription %d refused for a client already holding %d (AWS IoT limit)",
                         held + 1, limit)
                return SUBACK_FAILURE
        self._invalidate()
        return await super().add_subscription(subscription, session)

    # -- topic index: amqtt matches every message against every filter (and formats a debug line
    # for each miss), which saturates the fake with ~1,000 device subscriptions. Filters are indexed
    # by their first three levels; filters with a wildcard there are always tried.

    def _index(self) -> tuple[dict[tuple[str, ...], list[str]], list[str]]:
        if self._filter_index is None:
            by_prefix: dict[tuple[str, ...], list[str]] = {}
            generic: list[str] = []
            for f in self._subscriptions:
                head = tuple(f.split("/", 3)[:3])
                if len(head) < 3 or any("+" in x or "#" in x for x in head) or f.startswith("$"):
                    generic.append(f)
                else:
                    by_prefix.setdefault(head, []).append(f)
            self._filter_index = (by_prefix, generic)
        return self._filter_index

    def _candidates(self, topic: str) -> list[str]:
        by_prefix, generic = self._index()
        return by_prefix.get(tuple(topic.split("/", 3)[:3]), []) + generic

    async def _run_broadcast(self, running_tasks: Any) -> None:
        """amqtt's ``_run_broadcast`` (0.12.1) over the indexed candidate filters only."""
        broadcast = await self._broadcast_queue.get()
        topic = broadcast["topic"]
        for k_filter in self._candidates(topic):
            subscriptions = self._subscriptions.get(k_filter)
            if not subscriptions or not self._matches(topic, k_filter):
                continue
            for target_session, sub_qos in list(subscriptions):
                qos = broadcast.get("qos", sub_qos)
                if not await self._topic_filtering(target_session, topic=topic, action=Action.RECEIVE):
                    continue
                state = target_session.transitions.state
                if state != "connected" and not target_session.clean_session and qos in (1, 2) \
                        and not target_session.is_anonymous:
                    await self._retain_broadcast_message(broadcast, qos, target_session)
                    continue
                if state != "connected":
                    continue
                handler = self._get_handler(target_session)
                if handler:
                    running_tasks.append(asyncio.ensure_future(
                        handler.mqtt_publish(topic, broadcast["data"], qos, retain=False)))

    def _invalidate(self) -> None:
        self._filter_index = None

    def _del_subscription(self, a_filter: str, session: Session) -> int:
        self._invalidate()
        return super()._del_subscription(a_filter, session)

    async def _del_all_subscriptions(self, session: Session) -> None:
        self._invalidate()
        await super()._del_all_subscriptions(session)
        self._invalidate()

    def live_connections(self) -> list[_Conn]:
        return list(self._conns.values())


CA_DIR_PREFIX = "navilink-fake-ca-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_ca_dirs(root: Path | None = None) -> int:
    """Remove CA folders (``navilink-fake-ca-<pid>-*``) of processes that no longer exist, e.g. one
    killed with SIGKILL; returns how many were removed. Folders of live processes are left alone."""
    base = Path(root or tempfile.gettempdir())
    removed = 0
    for d in base.glob(f"{CA_DIR_PREFIX}*-*"):
        pid_text = d.name.removeprefix(CA_DIR_PREFIX).split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed += not d.exists()
    return removed


class FakeBroker:
    """The fake AWS IoT endpoint: ``await start()``, then point awsiotsdk at ``localhost:port``."""

    endpoint = "localhost"

    def __init__(
        self,
        credential_lookup: CredentialLookup,
        *,
        verify_signature: bool = True,
        on_publish: PublishHook | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self._lookup = credential_lookup
        self.verify_signature = verify_signature
        self.on_publish = on_publish
        self._host = host
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._ca_file: Path | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self._broker: _NaviBroker | None = None
        self._port: int | None = None
        self._akid_of: dict[ServerConnection, str] = {}
        self._restart_task: asyncio.Task[None] | None = None
        self.refused_upgrades = 0
        self.accepted_upgrades = 0
        # AWS IoT's quota of topic filters per connection; None lifts it
        self.max_subscriptions: int | None = MAX_SUBSCRIPTIONS_PER_CONNECTION
        self.refused_subscriptions = 0

    # -- lifecycle

    async def start(self) -> None:
        quiet_amqtt_logs()
        sweep_stale_ca_dirs()
        self._tmp = tempfile.TemporaryDirectory(prefix=f"{CA_DIR_PREFIX}{os.getpid()}-")
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        self._ca_file = Path(self._tmp.name) / "fake-navilink-ca.pem"
        ca.cert_pem.write_to_path(str(self._ca_file))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        self.ssl_context = ctx
        config = {
            "listeners": {"default": {"type": "ws", "bind": f"{self._host}:0"},
                          LISTENER: {"type": "ws", "bind": f"{self._host}:0"}},
            "plugins": {f"{__name__}.UpgradeAuthenticated": {}},
            "timeout_disconnect_delay": 0,
            "session_expiry_interval": 3600,  # AWS IoT's default persistent-session expiry
        }  # fmt: skip
        # amqtt needs a "default" listener; drop its bind so only ours listens.
        self._broker = _NaviBroker(config, self)
        self._broker.listeners_config["default"].bind = None
        await self._broker.start()
        server = self._broker._servers[LISTENER].instance
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("fake IoT broker listening on wss://%s:%d%s", self._host, self._port, MQTT_PATH)

    async def stop(self) -> None:
        try:
            if self._restart_task is not None:
                self._restart_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._restart_task
            if self._broker is not None:
                broker, self._broker = self._broker, None
                await broker.shutdown()
        finally:  # the CA folder goes whatever happened above (cancelled, failed shutdown)
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("broker not started")
        return self._port

    @property
    def ca_file(self) -> Path:
        if self._ca_file is None:
            raise RuntimeError("broker not started")
        return self._ca_file

    # -- messaging

    async def publish(self, topic: str, payload: bytes) -> None:
        """Deliver a device-originated message to every matching subscriber (at its QoS)."""
        if self._broker is not None:
            await self._broker.internal_message_broadcast(topic, payload)

    def connected_client_ids(self) -> list[str]:
        return [] if self._broker is None else sorted(self._broker.by_client)

    def subscription_counts(self) -> dict[str, int]:
        """Topic filters held per client id (every session the broker knows, connected or not)."""
        out: dict[str, int] = {}
        if self._broker is not None:
            for subs in self._broker._subscriptions.values():
                for s, _ in subs:
                    out[s.client_id] = out.get(s.client_id, 0) + 1
        return out

    # -- faults

    async def disconnect_all(self) -> int:
        """Drop every client connection (the client sees an unexpected hang-up)."""
        return await self._disconnect(lambda c: True)

    async def disconnect_akids(self, akids: set[str]) -> int:
        return await self._disconnect(lambda c: c.akid in akids)

    async def disconnect_invalid(self) -> int:
        """Drop connections whose credentials are no longer valid (expiry forces a disconnect)."""
        return await self._disconnect(lambda c: c.akid is None or self._lookup(c.akid) is None)

    async def disconnect_older_than(self, seconds: float) -> int:
        """AWS IoT drops connections after 24 h; this does the same for any age."""
        limit = time.monotonic() - seconds
        return await self._disconnect(lambda c: c.opened <= limit)

    async def disconnect_random(self, probability: float, rng: random.Random) -> int:
        """Drop each connection with this probability (``UNEXPECTED_HANGUP``-style noise)."""
        return await self._disconnect(lambda c: rng.random() < probability)

    async def _disconnect(self, pick: Callable[[_Conn], bool]) -> int:
        if self._broker is None:
            return 0
        doomed = [c for c in self._broker.live_connections() if pick(c)]
        for c in doomed:
            c.ws.transport.abort()
        for c in doomed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.done.wait(), 3.0)
        return len(doomed)

    async def stop_listener(self) -> None:
        """Close the wss listener and every connection on it; the port stays reserved for restart."""
        if self._broker is None:
            return
        server = self._broker._servers[LISTENER]
        await self.disconnect_all()
        await server.close_instance()

    async def start_listener(self) -> None:
        if self._broker is None:
            return
        server = self._broker._servers[LISTENER]
        server.instance = await self._broker._create_server_instance(
            LISTENER, ListenerType.WS, self._host, self.port, None
        )

    async def down(self, seconds: float) -> None:
        """Stop the listener now and restart it on the same port after ``seconds`` (in the background)."""
        await self.stop_listener()

        async def _restart() -> None:
            await asyncio.sleep(seconds)
            await self.start_listener()

        self._restart_task = asyncio.create_task(_restart())

    async def wait_up(self) -> None:
        """Wait for a pending ``down()`` restart to finish."""
        if self._restart_task is not None:
            await self._restart_task

    # -- upgrade check

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        refusal, akid = self._check_upgrade(request)
        if refusal is not None:
            self.refused_upgrades += 1
            log.info("refused websocket upgrade: %s", refusal)
            status = http.HTTPStatus.NOT_FOUND if refusal == "path" else http.HTTPStatus.FORBIDDEN
            return connection.respond(status, f"{status.phrase}\n")
        self.accepted_upgrades += 1
        if akid is not None:
            self._akid_of[connection] = akid
        return None

    def _check_upgrade(self, request: Request) -> tuple[str | None, str | None]:
        """(None, akid) if the upgrade may proceed, else (a short non-secret reason, None)."""
        parts = urlsplit(request.path)
        if parts.path != MQTT_PATH:
            return "path", None
        params = parse_query(parts.query)
        p = dict(params)
        needed = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Signature")
        if any(k not in p for k in needed) or p["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
            return "missing SigV4 query parameters", None
        cred = p["X-Amz-Credential"].split("/")
        if len(cred) != 5 or cred[3] != "iotdevicegateway" or cred[4] != "aws4_request":
            return "malformed X-Amz-Credential", None
        secret = self._lookup(cred[0])
        if secret is None:
            return "unknown or expired access key id", None
        if self.verify_signature:
            headers = {k.lower(): v for k, v in request.headers.raw_items()}
            want = sigv4_query_signature(secret=secret, path=parts.path, params=params, headers=headers)
            if not hmac.compare_digest(want, p["X-Amz-Signature"]):
                return "signature mismatch", None
        return None, cred[0]
