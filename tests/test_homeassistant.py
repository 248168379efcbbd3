"""The Home Assistant sink: discovery payloads (pure), energy totals from a real warehouse, and the
bridge end to end against a real MQTT broker (amqtt, plain TCP on 127.0.0.1) and the fake cloud."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from navilink_etl.config import load_config
from navilink_etl.errors import ConfigurationError
from navilink_etl.homeassistant.discovery import (
    BRIDGE_AVAILABILITY,
    HA_MODES,
    SENSORS,
    HeaterIdentity,
    Topics,
    discovery_messages,
    heat_source,
    state_payload,
)
from navilink_etl.homeassistant.target import parse_publish_url
from navilink_etl.protocol import Command, DhwMode
from navilink_etl.redact import live_secrets
from navilink_etl.status import DeviceStatus, parse_status_object

MAC = "04786332abcd"
BROKER_USER, BROKER_PASSWORD = "hauser", "Br0ker-Pw-9x7"
HA_WATER_HEATER_MODES = {"off", "eco", "electric", "gas", "heat_pump", "high_demand", "performance"}
COMMON_KEYS = {"name", "unique_id", "device", "availability", "availability_mode", "origin"}
SENSOR_KEYS = COMMON_KEYS | {"state_topic", "value_template"}
WATER_HEATER_KEYS = COMMON_KEYS | {
    "current_temperature_topic", "current_temperature_template", "temperature_state_topic",
    "temperature_state_template", "temperature_command_topic", "mode_state_topic", "mode_state_template",
    "mode_command_topic", "modes", "power_command_topic", "min_temp", "max_temp", "temperature_unit",
    "precision",
}  # fmt: skip


def sim_status(mac: str = MAC, **overrides: int) -> DeviceStatus:
    from navilink_etl.sim.cloud import build_devices

    dev = build_devices(1, seed=3, start=datetime(2026, 1, 15, 6, tzinfo=UTC))[0]
    values = dev.snapshot(Command.STATUS) | overrides
    return DeviceStatus(raw=parse_status_object(values), mac=mac, received_at=datetime(2026, 1, 15, 6, tzinfo=UTC))


def check_discovery(topic: str, payload: dict[str, Any], prefix: str = "homeassistant") -> None:
    """What HA needs from one discovery message, as this sink uses it."""
    parts = topic.split("/")
    assert len(parts) == 5 and parts[0] == prefix and parts[4] == "config", topic
    component = parts[1]
    assert component in ("water_heater", "sensor")
    assert (WATER_HEATER_KEYS if component == "water_heater" else SENSOR_KEYS) <= payload.keys(), topic
    dev = payload["device"]
    assert dev["identifiers"] and dev["name"] and dev["manufacturer"] == "Navien" and dev["model"]
    assert payload["availability"][0]["topic"] == BRIDGE_AVAILABILITY
    if component == "water_heater":
        assert set(payload["modes"]) <= HA_WATER_HEATER_MODES
        assert payload["temperature_unit"] in ("C", "F") and payload["min_temp"] < payload["max_temp"]
    if payload.get("device_class") == "energy":
        assert payload["state_class"] == "total_increasing" and payload["unit_of_measurement"] == "kWh"
    if payload.get("device_class") == "enum":
        assert payload["options"] and "unit_of_measurement" not in payload


# --- pure ----------------------------------------------------------------------------------------


def test_discovery_payloads_have_the_keys_and_unique_ids() -> None:
    ident = HeaterIdentity(MAC, "Garage heater", sw_version="184549632", min_temp_c=35.0, max_temp_c=65.5)
    msgs = discovery_messages(ident, "homeassistant")
    assert len(msgs) == 1 + len(SENSORS)
    for topic, payload in msgs:
        check_discovery(topic, payload)
        assert orjson.loads(orjson.dumps(payload)) == payload  # plain JSON
    ids = [p["unique_id"] for _, p in msgs]
    assert len(set(ids)) == len(ids) and all(MAC in i for i in ids)
    energy = {p["unique_id"].rsplit("_", 2)[-2] for _, p in msgs if p.get("device_class") == "energy"}
    assert energy == {"pump", "element", "total"}
    wh = msgs[0][1]
    assert wh["temperature_command_topic"] == Topics(MAC).set_temperature and wh["device"]["sw_version"] == "184549632"
    assert wh["device"]["connections"] == [["mac", "04:78:63:32:ab:cd"]]
    other = discovery_messages(HeaterIdentity("047863320001", "x"), "ha")
    assert not {p["unique_id"] for _, p in other} & set(ids) and other[0][0].startswith("ha/water_heater/")


def test_state_payload_numbers_and_meanings() -> None:
    st = sim_status(compUse=2, heatUpperUse=1, heatLowerUse=1, currentInletTemperature=0, errorCode=0,
                    dhwOperationSetting=int(DhwMode.ENERGY_SAVER))
    s = state_payload(st)
    for k in ("current_temperature_c", "target_temperature_c", "tank_upper_c", "tank_lower_c", "ambient_c"):
        assert isinstance(s[k], float) and math.isfinite(s[k]), k
    assert s["tank_upper_c"] == st.raw["tankUpperTemperature"] / 10  # deci-degC on the wire
    assert s["target_temperature_c"] == st.raw["dhwTemperatureSetting"] / 2  # half-degC on the wire
    assert isinstance(s["charge_percent"], int) and isinstance(s["power_w"], int)
    assert s["heat_source"] == "heat_pump" and s["mode"] == "eco" and s["power"] == "ON"
    assert s["inlet_c"] is None and s["error_code"] == 0 and s["mode"] in HA_MODES
    off = state_payload(sim_status(dhwOperationSetting=int(DhwMode.POWER_OFF)))
    assert off["mode"] == "off" and off["power"] == "OFF" and off["dhw_mode"] == "power_off"
    assert state_payload(sim_status(currentInletTemperature=30))["inlet_c"] == 15.0


@pytest.mark.parametrize(("comp", "up", "low", "want"), [
    (1, 1, 1, "idle"), (2, 1, 1, "heat_pump"), (1, 2, 1, "element"), (1, 1, 2, "element"),
    (2, 2, 1, "hybrid"), (0, 0, 0, None),
])  # fmt: skip
def test_heat_source_from_relay_flags(comp: int, up: int, low: int, want: str | None) -> None:
    assert heat_source(sim_status(compUse=comp, heatUpperUse=up, heatLowerUse=low)) == want


def test_publish_url_parsing_and_config_errors() -> None:
    t = parse_publish_url("mqtts://ha%40home:p%3Ass@broker.lan")
    assert (t.host, t.port, t.tls, t.username, t.password_value) == ("broker.lan", 8883, True, "ha@home", "p:ss")
    assert "p:ss" not in repr(t) and t.display == "mqtts://ha@home@broker.lan:8883"
    assert parse_publish_url("mqtt://10.0.0.2").port == 1883
    for bad in ("http://h", "mqtt://", "mqtt://u:pw@h:99999", "mqtt://:pw@h", "mqtt://h/x", "h:1883"):
        with pytest.raises(ConfigurationError, match=r"NAVILINK_PUBLISH_URL.*fix: use mqtt://") as exc:
            load_config(publish_url=bad)
        assert "pw" not in str(exc.value).split("fix:")[0]
    with pytest.raises(ConfigurationError, match="NAVILINK_HA_DISCOVERY_PREFIX"):
        load_config(ha_discovery_prefix="home/#")
    cfg = load_config(publish_url=f"mqtt://{BROKER_USER}:Zq-secret-77@127.0.0.1:1884", ha_discovery_prefix="ha")
    assert "Zq-secret-77" not in repr(cfg) and "Zq-secret-77" in live_secrets()
    assert cfg.publish_target is not None and cfg.publish_target.port == 1884 and cfg.ha_discovery_prefix == "ha"


# --- energy from a real warehouse ----------------------------------------------------------------


def test_energy_totals_are_cumulative_kwh_from_energy_daily(tmp_path: Path) -> None:
    from navilink_etl import warehouse
    from navilink_etl.config import NaviLinkConfig
    from navilink_etl.homeassistant.energy import energy_totals
    from navilink_etl.sim.simulate import simulate

    data = tmp_path / "data"
    simulate(data, devices=1, days=2, interval_s=60, seed=21, start=datetime(2026, 1, 5, tzinfo=UTC))
    cfg = NaviLinkConfig(data_dir=data, polling_interval=60, timezone="UTC")
    warehouse.refresh(cfg)
    daily = warehouse.query(cfg, "select * from energy_daily order by day")
    mac = daily["device"][0]
    got = energy_totals(cfg, mac)
    assert daily.height >= 2 and got["first_day"] == str(daily["day"][0]) and got["last_day"] == str(daily["day"][-1])
    assert got["heat_pump_kwh"] == pytest.approx(daily["compressor_wh"].sum() / 1000, abs=1e-3)
    assert got["element_kwh"] == pytest.approx(daily["element_wh"].sum() / 1000, abs=1e-3)
    assert got["total_kwh"] == pytest.approx(daily["total_wh"].sum() / 1000, abs=1e-3)
    assert got["total_kwh"] > max(daily["total_wh"]) / 1000  # a running sum, not one day
    assert got["heat_pump_kwh"] + got["element_kwh"] <= got["total_kwh"] + 1e-3  # total adds standby
    assert energy_totals(cfg, "047863320000") == dict.fromkeys(got)


# --- end to end: real broker, fake cloud ---------------------------------------------------------


class PasswordAuth(BaseAuthPlugin):
    """Accept only the test's user and password."""

    @dataclass
    class Config:
        username: str = BROKER_USER
        password: str = BROKER_PASSWORD

    async def authenticate(self, *, session: Session) -> bool | None:
        return session.username == BROKER_USER and session.password == BROKER_PASSWORD


@contextlib.asynccontextmanager
async def tcp_broker() -> AsyncIterator[int]:
    """amqtt on a free 127.0.0.1 port (plain TCP, password required); yields the port."""
    broker = Broker({"listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0"}},
                     "plugins": {f"{__name__}.PasswordAuth": {}}, "timeout_disconnect_delay": 0})
    await broker.start()
    try:
        yield broker._servers["default"].instance.sockets[0].getsockname()[1]
    finally:
        await broker.shutdown()


class Recorder:
    """A plain MQTT subscriber (what HA would see): the last message per topic, and every one."""

    def __init__(self) -> None:
        self.last: dict[str, aiomqtt.Message] = {}
        self.all: list[aiomqtt.Message] = []
        self.changed = asyncio.Event()

    async def run(self, mq: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):  # the test closed the connection
            async for msg in mq.messages:
                self.last[str(msg.topic)] = msg
                self.all.append(msg)
                self.changed.set()

    def json(self, topic: str) -> Any:
        return orjson.loads(self.last[topic].payload)  # type: ignore[arg-type]

    async def wait(self, pred: Any, what: str, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                while not pred():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None


async def until(pred: Any, timeout: float = 15.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not pred():  # noqa: ASYNC110 - polls the simulator's state, which has no event
            await asyncio.sleep(0.05)


def fake_energy(config: Any, mac: str) -> dict[str, Any]:
    return {"heat_pump_kwh": 12.5, "element_kwh": 3.25, "total_kwh": 16.0, "first_day": "2026-01-01",
            "last_day": "2026-01-15"}


async def test_bridge_against_a_real_broker_and_the_fake_cloud(caplog: pytest.LogCaptureFixture) -> None:
    from navilink_etl.cloud.client import NaviLinkClient
    from navilink_etl.homeassistant.bridge import HomeAssistantBridge
    from navilink_etl.sim.cloud import FakeCloud

    caplog.set_level(logging.DEBUG)
    start = datetime(2026, 1, 15, 6, tzinfo=UTC)
    async with tcp_broker() as port, FakeCloud(n_devices=1, speed=60, seed=5, start=start) as fc:
        url = f"mqtt://{BROKER_USER}:{BROKER_PASSWORD}@127.0.0.1:{port}"
        config = load_config(**fc.client_overrides(), publish_url=url)
        async with NaviLinkClient(config=config) as client, aiomqtt.Client(
                "127.0.0.1", port, username=BROKER_USER, password=BROKER_PASSWORD) as sub:
            await client.authenticate()
            device = (await client.get_devices())[0]
            mac, sim = device.mac, fc.device(device.mac).heater
            topics = Topics(mac)
            rec = Recorder()
            await sub.subscribe("homeassistant/#", qos=1)
            await sub.subscribe("navilink/#", qos=1)
            reader = asyncio.create_task(rec.run(sub))
            # a stale command someone published with retain: the broker replays it on subscribe
            await sub.publish(topics.set_power, "OFF", qos=1, retain=True)
            bridge = HomeAssistantBridge(client, config, energy_reader=fake_energy)
            await bridge.start()
            try:
                assert bridge.connected.is_set()
                await until(lambda: "ignoring a retained power command" in caplog.text)
                await sub.publish(topics.set_power, b"", qos=1, retain=True)  # clear it
                await asyncio.wait_for(device.get_status(), 10)  # the bridge sees it via the listener
                await rec.wait(lambda: len([t for t in rec.last if t.startswith("homeassistant/")])
                               == 1 + len(SENSORS) and topics.state in rec.last and topics.energy in rec.last,
                               "discovery, state and energy")
                discovery = [t for t in rec.last if t.startswith("homeassistant/")]
                payloads = [rec.json(t) for t in discovery]
                for t, p in zip(discovery, payloads, strict=True):
                    check_discovery(t, p)
                ids = [p["unique_id"] for p in payloads]
                assert len(set(ids)) == len(ids)
                wh = rec.json(f"homeassistant/water_heater/navilink_{mac}/water_heater/config")
                assert wh["device"]["name"] == device.name and wh["min_temp"] < wh["max_temp"] <= 66

                # availability and state
                assert rec.last[BRIDGE_AVAILABILITY].payload == b"online"
                assert rec.last[topics.availability].payload == b"online"
                state = rec.json(topics.state)
                for k in ("current_temperature_c", "target_temperature_c", "tank_upper_c", "tank_lower_c",
                          "ambient_c"):
                    assert isinstance(state[k], float), k
                assert isinstance(state["power_w"], int) and isinstance(state["charge_percent"], int)
                assert state["mode"] in HA_MODES and state["heat_source"] in ("idle", "heat_pump", "element", "hybrid")
                assert rec.json(topics.energy)["total_kwh"] == 16.0

                # retained: a newcomer (HA after a restart) gets discovery, availability and state
                async with aiomqtt.Client("127.0.0.1", port, username=BROKER_USER,
                                          password=BROKER_PASSWORD) as late:
                    late_rec = Recorder()
                    await late.subscribe("navilink/#", qos=1)
                    await late.subscribe(f"homeassistant/sensor/navilink_{mac}/#", qos=1)
                    late_task = asyncio.create_task(late_rec.run(late))
                    await late_rec.wait(lambda: {BRIDGE_AVAILABILITY, topics.state, topics.energy}
                                        <= late_rec.last.keys() and len(late_rec.last) >= 4 + len(SENSORS),
                                        "retained messages")
                    assert all(m.retain for m in late_rec.all)
                    late_task.cancel()
                    await asyncio.gather(late_task, return_exceptions=True)

                # commands change the simulated heater
                assert sim.power_on and bridge.commands_run == 0  # the retained OFF was not carried out
                await sub.publish(topics.set_temperature, "52.5", qos=1)
                await until(lambda: sim.setpoint_half_c == 105)
                await rec.wait(lambda: rec.json(topics.command_result)["command"] == "temperature"
                               if topics.command_result in rec.last else False, "temperature result")
                assert rec.json(topics.command_result)["ok"] is True
                await rec.wait(lambda: rec.json(topics.state)["target_temperature_c"] == 52.5, "new setpoint")

                await sub.publish(topics.set_mode, "high_demand", qos=1)
                await until(lambda: sim.mode == DhwMode.HIGH_DEMAND)
                await rec.wait(lambda: rec.json(topics.state)["mode"] == "high_demand", "mode state")

                await sub.publish(topics.set_power, "OFF", qos=1)
                await until(lambda: not sim.power_on)
                assert (await asyncio.wait_for(device.get_status(), 10)).dhw_mode == DhwMode.POWER_OFF
                await rec.wait(lambda: rec.json(topics.state)["power"] == "OFF", "power state")
                await sub.publish(topics.set_mode, "heat_pump", qos=1)  # from off: power on, then the mode
                await until(lambda: sim.power_on and sim.mode == DhwMode.HEAT_PUMP)

                # a refused command: reported, not retried, the heater unchanged
                calls: list[float] = []
                real = device.set_temperature

                async def counting(deg_f: float) -> Any:
                    calls.append(deg_f)
                    return await real(deg_f)

                device.set_temperature = counting  # type: ignore[method-assign]
                await sub.publish(topics.set_temperature, "90", qos=1)
                await rec.wait(lambda: rec.json(topics.command_result)["value"] == "90", "refusal")
                result = rec.json(topics.command_result)
                assert result["ok"] is False and "refused" in result["summary"] and "range" in result["summary"]
                await asyncio.sleep(1.5)
                assert calls == [194.0] and sim.setpoint_half_c == 105
                assert "not retried" in caplog.text

                # a command for a heater this account does not have
                await sub.publish("navilink/047863320000/set/power", "OFF", qos=1)
                await rec.wait(lambda: "navilink/047863320000/command_result" in rec.last, "unknown heater")
                assert rec.json("navilink/047863320000/command_result")["ok"] is False
            finally:
                await bridge.stop()
            await rec.wait(lambda: rec.last[BRIDGE_AVAILABILITY].payload == b"offline", "offline on stop")
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    assert BROKER_PASSWORD not in caplog.text and BROKER_PASSWORD not in repr(bridge)
    assert f"mqtt://{BROKER_USER}@127.0.0.1:{port}" in caplog.text  # the URL is logged without it


class NoCloud:
    """A cloud client with no heaters (the bridge's connection handling alone)."""

    def __init__(self) -> None:
        self.devices: list[Any] = []

    def add_message_listener(self, cb: Any) -> Any:
        return lambda: None

    def device(self, mac: str) -> None:
        return None


@contextlib.asynccontextmanager
async def tcp_proxy(port: int) -> AsyncIterator[tuple[int, list[asyncio.Transport]]]:
    """A 127.0.0.1 forwarder to ``port``; yields its port and the live client-side transports
    (abort one to cut the link without an MQTT DISCONNECT)."""
    links: list[asyncio.Transport] = []

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        w.close()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        links.append(w.transport)  # type: ignore[arg-type]
        ur, uw = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(r, uw), pipe(ur, w), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], links
    finally:
        for t in links:
            t.abort()
        server.close()


async def test_last_will_marks_the_bridge_offline_when_the_connection_dies() -> None:
    from navilink_etl.homeassistant.bridge import HomeAssistantBridge

    async with tcp_broker() as port, tcp_proxy(port) as (proxy_port, links), aiomqtt.Client(
            "127.0.0.1", port, username=BROKER_USER, password=BROKER_PASSWORD) as sub:
        config = load_config(publish_url=f"mqtt://{BROKER_USER}:{BROKER_PASSWORD}@127.0.0.1:{proxy_port}")
        rec = Recorder()
        await sub.subscribe(BRIDGE_AVAILABILITY, qos=1)
        task = asyncio.create_task(rec.run(sub))
        bridge = HomeAssistantBridge(NoCloud(), config, energy_reader=fake_energy)
        await bridge.start()
        try:
            await rec.wait(lambda: BRIDGE_AVAILABILITY in rec.last
                           and rec.last[BRIDGE_AVAILABILITY].payload == b"online", "birth")
            links[-1].abort()  # the link dies: the broker sends the last will
            await rec.wait(lambda: rec.last[BRIDGE_AVAILABILITY].payload == b"offline", "last will")
            await rec.wait(lambda: rec.last[BRIDGE_AVAILABILITY].payload == b"online", "back online", timeout=20)
            assert len(links) == 2
        finally:
            await bridge.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_bridge_keeps_trying_a_broker_that_refuses_it(caplog: pytest.LogCaptureFixture) -> None:
    from navilink_etl.homeassistant.bridge import HomeAssistantBridge

    caplog.set_level(logging.DEBUG)
    async with tcp_broker() as port:
        wrong = "Wr0ng-pass-123"
        config = load_config(publish_url=f"mqtt://{BROKER_USER}:{wrong}@127.0.0.1:{port}")
        bridge = HomeAssistantBridge(NoCloud(), config, energy_reader=fake_energy)
        await bridge.start(wait_s=1.5)
        assert not bridge.connected.is_set()
        await bridge.stop()
    assert "not reached yet" in caplog.text and wrong not in caplog.text


async def test_energy_never_published_lower_than_before() -> None:
    from navilink_etl.homeassistant.bridge import HomeAssistantBridge

    config = load_config(publish_url="mqtt://127.0.0.1:1")
    bridge = HomeAssistantBridge(NoCloud(), config, energy_reader=fake_energy)
    bridge._seed_floor(MAC, orjson.dumps({"heat_pump_kwh": 12.0, "element_kwh": 4.0, "total_kwh": 15.0}))
    got = bridge._no_decrease(MAC, fake_energy(config, MAC))  # a rebuilt warehouse says element 3.25
    assert (got["heat_pump_kwh"], got["element_kwh"], got["total_kwh"]) == (12.5, 4.0, 16.0)
    later = bridge._no_decrease(MAC, {"heat_pump_kwh": None, "element_kwh": 4.5, "total_kwh": 15.9})
    assert (later["heat_pump_kwh"], later["element_kwh"], later["total_kwh"]) == (12.5, 4.5, 16.0)


# --- wiring: collect --publish -------------------------------------------------------------------


async def test_collection_with_a_publish_url_feeds_home_assistant(tmp_path: Path) -> None:
    from navilink_etl.collect.run import run_collection
    from navilink_etl.sim.cloud import FakeCloud

    async with tcp_broker() as port, FakeCloud(n_devices=1, speed=60, seed=9) as fc, aiomqtt.Client(
            "127.0.0.1", port, username=BROKER_USER, password=BROKER_PASSWORD) as sub:
        mac = fc.devices[0].mac
        rec = Recorder()
        await sub.subscribe("#", qos=1)
        task = asyncio.create_task(rec.run(sub))
        config = load_config(**fc.client_overrides(), data_dir=tmp_path / "data", timezone="UTC",
                             publish_url=f"mqtt://{BROKER_USER}:{BROKER_PASSWORD}@127.0.0.1:{port}")
        stop, ready = asyncio.Event(), asyncio.Event()
        run = asyncio.create_task(run_collection(config, interval=60, duration_min=None, clock=fc.clock,
                                                 mode="embedded", status_line=False, stop=stop, ready=ready))
        try:
            await rec.wait(lambda: Topics(mac).state in rec.last and Topics(mac).energy in rec.last
                           and f"homeassistant/water_heater/navilink_{mac}/water_heater/config" in rec.last,
                           "discovery, state and energy from the collector", timeout=40)
            assert isinstance(rec.json(Topics(mac).state)["tank_upper_c"], float)
        finally:
            stop.set()
            stats = await asyncio.wait_for(run, 40)
        assert stats.fatal is None and sum(stats.polls_ok.values()) >= 1
        await rec.wait(lambda: rec.last[BRIDGE_AVAILABILITY].payload == b"offline", "offline after the run")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_collect_refuses_a_bad_publish_url() -> None:
    from typer.testing import CliRunner

    from navilink_etl.cli import app

    result = CliRunner().invoke(app, ["collect", "--duration", "0.01", "--publish", "http://u:Hunter22pw@h"])
    assert result.exit_code == 2
    assert "NAVILINK_PUBLISH_URL" in result.output and "mqtt://" in result.output
    assert "Hunter22pw" not in result.output
