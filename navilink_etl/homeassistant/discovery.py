"""Home Assistant MQTT discovery: topics, discovery payloads and state payloads (pure functions).

One HA device per heater: a ``water_heater`` entity plus sensors. Temperatures are published in
degC (the wire's own unit, half-degC setpoints); HA converts them to the user's unit system.
Field meanings: docs/protocol.md section 4.3; energy: docs/metrics.md (``energy_daily``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..protocol import DhwMode
from ..status import DeviceStatus

BASE_TOPIC = "navilink"
BRIDGE_AVAILABILITY = f"{BASE_TOPIC}/bridge/availability"
ONLINE, OFFLINE = "online", "offline"
PAYLOAD_ON, PAYLOAD_OFF = "ON", "OFF"
MANUFACTURER = "Navien"
DEFAULT_MIN_C, DEFAULT_MAX_C = 35.0, 65.5  # DID dhwTemperatureMin/Max defaults (70 / 131 half-degC)

# Device DHW mode -> HA water_heater mode (HA allows: off, eco, electric, gas, heat_pump,
# high_demand, performance). Vacation keeps only freeze protection: HA shows it as "off" and the
# "DHW mode" sensor tells the two apart.
HA_MODE: dict[DhwMode, str] = {
    DhwMode.HEAT_PUMP: "heat_pump", DhwMode.ELECTRIC: "electric", DhwMode.ENERGY_SAVER: "eco",
    DhwMode.HIGH_DEMAND: "high_demand", DhwMode.VACATION: "off", DhwMode.POWER_OFF: "off",
}  # fmt: skip
DEVICE_MODE: dict[str, DhwMode] = {
    "heat_pump": DhwMode.HEAT_PUMP, "electric": DhwMode.ELECTRIC, "eco": DhwMode.ENERGY_SAVER,
    "high_demand": DhwMode.HIGH_DEMAND,
}  # fmt: skip
HA_MODES: tuple[str, ...] = ("off", "eco", "heat_pump", "electric", "high_demand")
HEAT_SOURCES: tuple[str, ...] = ("idle", "heat_pump", "element", "hybrid")
DHW_MODE_NAMES: tuple[str, ...] = tuple(m.name.lower() for m in DhwMode)


@dataclass(frozen=True)
class HeaterIdentity:
    """What HA's device registry shows, plus the setpoint range (degC) from the device's DID."""

    mac: str
    name: str
    model: str = "NWP500"
    sw_version: str | None = None
    min_temp_c: float = DEFAULT_MIN_C
    max_temp_c: float = DEFAULT_MAX_C

    @classmethod
    def from_device(cls, device: Any) -> HeaterIdentity:
        """From a ``NaviLinkDevice`` (its DID, once read, gives the range and firmware)."""
        raw = getattr(getattr(device, "feature", None), "raw", None) or {}
        lo, hi, sw = raw.get("dhwTemperatureMin"), raw.get("dhwTemperatureMax"), raw.get("controllerSwVersion")
        return cls(mac=device.mac, name=device.name or f"NWP500 {device.mac[-4:]}",
                   sw_version=str(sw) if isinstance(sw, int) and sw else None,
                   min_temp_c=lo / 2.0 if isinstance(lo, int) else DEFAULT_MIN_C,
                   max_temp_c=hi / 2.0 if isinstance(hi, int) else DEFAULT_MAX_C)


@dataclass(frozen=True)
class Topics:
    """Every topic one heater uses under ``navilink/<mac>/``."""

    mac: str
    base: str = BASE_TOPIC

    def _t(self, leaf: str) -> str:
        return f"{self.base}/{self.mac}/{leaf}"

    @property
    def state(self) -> str:
        return self._t("state")

    @property
    def energy(self) -> str:
        return self._t("energy")

    @property
    def availability(self) -> str:
        return self._t("availability")

    @property
    def command_result(self) -> str:
        return self._t("command_result")

    @property
    def set_temperature(self) -> str:
        return self._t("set/temperature")

    @property
    def set_mode(self) -> str:
        return self._t("set/mode")

    @property
    def set_power(self) -> str:
        return self._t("set/power")


def command_topics_filter(base: str = BASE_TOPIC) -> str:
    return f"{base}/+/set/+"


@dataclass(frozen=True)
class SensorSpec:
    key: str  # object id and the state-payload field
    name: str
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    source: str = "state"  # which topic: state, energy or command_result
    options: tuple[str, ...] | None = None
    diagnostic: bool = False
    icon: str | None = None


SENSORS: tuple[SensorSpec, ...] = (
    SensorSpec("charge_percent", "Tank charge", "%", None, "measurement", icon="mdi:water-percent"),
    SensorSpec("tank_upper_c", "Upper tank temperature", "°C", "temperature", "measurement"),
    SensorSpec("tank_lower_c", "Lower tank temperature", "°C", "temperature", "measurement"),
    SensorSpec("ambient_c", "Ambient air temperature", "°C", "temperature", "measurement"),
    SensorSpec("inlet_c", "Cold inlet temperature", "°C", "temperature", "measurement"),
    SensorSpec("power_w", "Power", "W", "power", "measurement"),
    SensorSpec("heat_source", "Heating with", None, "enum", options=HEAT_SOURCES, icon="mdi:fire"),
    SensorSpec("dhw_mode", "DHW mode", None, "enum", options=DHW_MODE_NAMES, icon="mdi:water-boiler"),
    SensorSpec("error_code", "Error code", None, None, None, diagnostic=True, icon="mdi:alert-circle"),
    SensorSpec("heat_pump_kwh", "Heat pump electricity", "kWh", "energy", "total_increasing", "energy"),
    SensorSpec("element_kwh", "Element electricity", "kWh", "energy", "total_increasing", "energy"),
    SensorSpec("total_kwh", "Total electricity", "kWh", "energy", "total_increasing", "energy"),
    SensorSpec("last_command", "Last command", None, None, None, "command_result", diagnostic=True,
               icon="mdi:console"),
)


def node_id(mac: str) -> str:
    return f"navilink_{mac}"


def unique_id(mac: str, key: str) -> str:
    return f"navilink_{mac}_{key}"


def discovery_topic(prefix: str, component: str, mac: str, key: str) -> str:
    """``<prefix>/<component>/<node_id>/<object_id>/config``."""
    return f"{prefix}/{component}/{node_id(mac)}/{key}/config"


def device_block(ident: HeaterIdentity) -> dict[str, Any]:
    mac = ident.mac
    block: dict[str, Any] = {
        "identifiers": [node_id(mac)],
        "connections": [["mac", ":".join(mac[i:i + 2] for i in range(0, 12, 2))]],
        "name": ident.name, "manufacturer": MANUFACTURER, "model": ident.model,
    }
    if ident.sw_version:
        block["sw_version"] = ident.sw_version
    return block


def _common(ident: HeaterIdentity, key: str, name: str | None, topics: Topics,
            sw_version: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": unique_id(ident.mac, key),
        "device": device_block(ident),
        "origin": {"name": "navilink-etl", **({"sw_version": sw_version} if sw_version else {})},
        "availability": [{"topic": BRIDGE_AVAILABILITY}, {"topic": topics.availability}],
        "availability_mode": "all",
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "qos": 1,
    }


def water_heater_config(ident: HeaterIdentity, topics: Topics, sw_version: str | None = None) -> dict[str, Any]:
    """The ``water_heater`` entity: current/target temperature, mode, and its command topics."""
    cfg = _common(ident, "water_heater", None, topics, sw_version)  # name None: the device's name
    cfg.update({
        "current_temperature_topic": topics.state,
        "current_temperature_template": "{{ value_json.current_temperature_c }}",
        "temperature_state_topic": topics.state,
        "temperature_state_template": "{{ value_json.target_temperature_c }}",
        "temperature_command_topic": topics.set_temperature,
        "mode_state_topic": topics.state,
        "mode_state_template": "{{ value_json.mode }}",
        "mode_command_topic": topics.set_mode,
        "modes": list(HA_MODES),
        "power_command_topic": topics.set_power,
        "payload_on": PAYLOAD_ON,
        "payload_off": PAYLOAD_OFF,
        "min_temp": ident.min_temp_c,
        "max_temp": ident.max_temp_c,
        "temperature_unit": "C",
        "precision": 0.5,
        "optimistic": False,
        "retain": False,
    })
    return cfg


def sensor_config(ident: HeaterIdentity, topics: Topics, spec: SensorSpec,
                  sw_version: str | None = None) -> dict[str, Any]:
    cfg = _common(ident, spec.key, spec.name, topics, sw_version)
    topic = {"state": topics.state, "energy": topics.energy, "command_result": topics.command_result}[spec.source]
    cfg["state_topic"] = topic
    cfg["value_template"] = ("{{ value_json.summary }}" if spec.source == "command_result"
                             else f"{{{{ value_json.{spec.key} }}}}")
    if spec.source == "command_result":
        cfg["json_attributes_topic"] = topic
    for k, v in (("unit_of_measurement", spec.unit), ("device_class", spec.device_class),
                 ("state_class", spec.state_class), ("icon", spec.icon)):
        if v is not None:
            cfg[k] = v
    if spec.options is not None:
        cfg["options"] = list(spec.options)
    if spec.diagnostic:
        cfg["entity_category"] = "diagnostic"
    if spec.device_class == "temperature":
        cfg["suggested_display_precision"] = 1
    return cfg


def discovery_messages(ident: HeaterIdentity, prefix: str, *, base: str = BASE_TOPIC,
                       sw_version: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every (topic, payload) to publish, retained, so HA creates this heater's entities."""
    topics = Topics(ident.mac, base)
    out = [(discovery_topic(prefix, "water_heater", ident.mac, "water_heater"),
            water_heater_config(ident, topics, sw_version))]
    out += [(discovery_topic(prefix, "sensor", ident.mac, s.key), sensor_config(ident, topics, s, sw_version))
            for s in SENSORS]
    return out


# --- state --------------------------------------------------------------------------------------


def heat_source(st: DeviceStatus) -> str | None:
    """idle / heat_pump / element / hybrid from the compressor and element relay flags."""
    comp, up, low = st.compressor_on, st.upper_element_on, st.lower_element_on
    if comp is None and up is None and low is None:
        return None
    element = bool(up) or bool(low)
    if comp and element:
        return "hybrid"
    return "heat_pump" if comp else "element" if element else "idle"


def ha_mode(st: DeviceStatus) -> str | None:
    m = st.dhw_mode
    return HA_MODE.get(m) if isinstance(m, DhwMode) else None


def _inlet_c(st: DeviceStatus) -> float | None:
    """``currentInletTemperature`` (half-degC, disputed): 0 on the NWP500 means not measured."""
    v = st.raw["currentInletTemperature"]
    return None if not v else v / 2.0


def state_payload(st: DeviceStatus) -> dict[str, Any]:
    """The JSON published on ``navilink/<mac>/state``: numbers as numbers, None when unknown."""
    m = st.dhw_mode
    received: datetime | None = st.received_at
    return {
        "current_temperature_c": st.dhw_temperature_c,
        "target_temperature_c": st.setpoint_c,
        "mode": ha_mode(st),
        "power": None if m is None else PAYLOAD_OFF if m == DhwMode.POWER_OFF else PAYLOAD_ON,
        "dhw_mode": m.name.lower() if isinstance(m, DhwMode) else None,
        "charge_percent": st.dhw_charge_per,
        "tank_upper_c": st.tank_upper_c,
        "tank_lower_c": st.tank_lower_c,
        "ambient_c": st.ambient_c,
        "inlet_c": _inlet_c(st),
        "power_w": st.power_w,
        "heat_source": heat_source(st),
        "error_code": st.raw["errorCode"],
        "received_at": received.isoformat() if received is not None else None,
    }


def energy_payload(totals: dict[str, Any]) -> dict[str, Any]:
    """The JSON on ``navilink/<mac>/energy``: cumulative kWh since the first stored day."""
    return {k: totals.get(k) for k in ("heat_pump_kwh", "element_kwh", "total_kwh", "first_day", "last_day")}
