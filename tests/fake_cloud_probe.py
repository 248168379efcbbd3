"""A bare awsiotsdk client for fake-cloud tests: the production builder (wss + SigV4), nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from awscrt import auth, mqtt
from awsiot import mqtt_connection_builder

from navilink_etl.sim.cloud import FakeCloud


async def sign_in(fc: FakeCloud, email: str | None = None, password: str | None = None) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s:
        body = {"userId": email or fc.demo_email, "password": password or fc.demo_password}
        async with s.post(f"{fc.rest_base_url}/user/sign-in", json=body) as r:
            data: dict[str, Any] = await r.json()
            return data


class Probe:
    """One MQTT connection; every received message lands in ``messages`` as (topic, decoded)."""

    def __init__(self, fc: FakeCloud, token: dict[str, Any], client_id: str = "probe-1",
                 *, akid: str | None = None, clean_session: bool = True) -> None:  # fmt: skip
        self.loop = asyncio.get_running_loop()
        self.messages: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.interrupted = asyncio.Event()
        self.client_id = client_id
        creds = auth.AwsCredentialsProvider.new_static(
            akid or token["accessKeyId"], token["secretKey"], token["sessionToken"]
        )
        self.conn = mqtt_connection_builder.websockets_with_default_aws_signing(
            region="us-east-1", credentials_provider=creds, endpoint=fc.iot_endpoint,
            port=fc.iot_port, ca_filepath=str(fc.ca_file), client_id=client_id,
            clean_session=clean_session, keep_alive_secs=30, reconnect_min_timeout_secs=1,
            reconnect_max_timeout_secs=2,
            on_connection_interrupted=lambda connection, error, **kw: self.loop.call_soon_threadsafe(
                self.interrupted.set),
        )  # fmt: skip

    async def connect(self, within: float = 10.0) -> None:
        await asyncio.wait_for(asyncio.wrap_future(self.conn.connect()), within)

    async def disconnect(self) -> None:
        await asyncio.wait_for(asyncio.wrap_future(self.conn.disconnect()), 10)

    def _on_message(self, topic: str, payload: bytes, **kwargs: Any) -> None:
        try:
            decoded: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            decoded = payload
        self.loop.call_soon_threadsafe(self.messages.put_nowait, (topic, decoded))

    async def subscribe(self, topic: str) -> None:
        fut, _ = self.conn.subscribe(topic, mqtt.QoS.AT_LEAST_ONCE, callback=self._on_message)
        result = await asyncio.wait_for(asyncio.wrap_future(fut), 10)
        assert result["qos"] is not None, f"subscription to {topic} refused"

    async def publish(self, topic: str, body: dict[str, Any]) -> None:
        fut, _ = self.conn.publish(topic, orjson.dumps(body), mqtt.QoS.AT_LEAST_ONCE)
        await asyncio.wait_for(asyncio.wrap_future(fut), 10)

    async def next_reply(self, within: float = 5.0) -> tuple[str, Any]:
        """The next message that is not a request (our own publishes echo back on ``G/#``)."""
        while True:
            topic, msg = await asyncio.wait_for(self.messages.get(), within)
            if not (isinstance(msg, dict) and "request" in msg):
                return topic, msg


def request(mac: str, client_id: str, command: int, suffix: str, *, session_id: str = "1758919299363",
            response_topic: str | None = None, **extra: Any) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """(topic, body) of a request as nwp500-python builds it."""
    topic = f"cmd/52/navilink-{mac}/{suffix}"
    req = {"command": command, "deviceType": 52, "macAddress": mac, "additionalValue": "5322", **extra}
    return topic, {
        "clientID": client_id, "sessionID": session_id, "protocolVersion": 2, "request": req,
        "requestTopic": topic,
        "responseTopic": response_topic or f"cmd/52/navilink-{mac}/{client_id}/res",
    }  # fmt: skip
