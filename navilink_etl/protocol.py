"""NaviLink wire constants: every topic string, command code and enum value in one place.

Shared by the cloud client and by the simulator's device agent (the second implementation of
the device). Sources and evidence: docs/protocol.md sections 3-6.
"""

from __future__ import annotations

from enum import IntEnum

DEFAULT_REST_BASE_URL = "https://nlus.naviensmartcontrol.com/api/v2.1"
DEFAULT_IOT_ENDPOINT = "a1t30mldyslmuq-ats.iot.us-east-1.amazonaws.com"
DEFAULT_IOT_REGION = "us-east-1"
IOT_SIGNING_SERVICE = "iotdevicegateway"

DEVICE_TYPE = 52  # NWP500 (NPF700 Wi-Fi module)
PROTOCOL_VERSION = 2
DEVICE_LIST_PAGE = 20  # the API's page size (offset/count, count <= 20)


class Command(IntEnum):
    """Request/control codes sent in ``request.command`` and echoed in ``status.command``."""

    DEVICE_INFO = 16777217  # 0x01000001  G/st/did
    END_CONNECTION = 16777218
    STATUS = 16777219  # 0x01000003  G/st
    RESERVATION_READ = 16777222
    ENERGY_USAGE = 16777225  # 0x01000009  G/st/energy-usage-daily-query/rd
    RESERVATION_WRITE = 16777226
    SW_DOWNLOAD_INFO = 16777227
    POWER_OFF = 33554433  # 0x02000001
    POWER_ON = 33554434  # 0x02000002
    DHW_MODE = 33554437  # 0x02000005
    WEEKLY_RESERVATION = 33554438
    TOU = 33554439
    FREEZE_TEMP = 33554451
    DHW_TEMPERATURE = 33554464  # 0x02000020, param in half-degC
    GOOUT_DAY = 33554466  # accepted silently by the device, does nothing
    ANTI_LEGIONELLA_OFF = 33554471
    ANTI_LEGIONELLA_ON = 33554472


class Event(IntEnum):
    """Event codes the device puts in ``status.command`` of its own pushes."""

    SNAPSHOT = 0  # follow-up after a status reply, or a setting toggled
    BUSY_CHANGED = 67108868  # 0x04000004 operationBusy / currentHeatUse changed
    OPERATION_MODE_CHANGED = 67108883  # 0x04000013
    RELAY_CHANGED = 67108892  # 0x0400001C compressor or element relay flipped


# mode strings that go with each control command
CONTROL_MODE_STRINGS: dict[int, str] = {
    Command.POWER_OFF: "power-off",
    Command.POWER_ON: "power-on",
    Command.DHW_MODE: "dhw-mode",
    Command.DHW_TEMPERATURE: "dhw-temperature",
    Command.GOOUT_DAY: "goout-day",
    Command.FREEZE_TEMP: "frez-temp",
    Command.ANTI_LEGIONELLA_OFF: "anti-leg-off",
    Command.ANTI_LEGIONELLA_ON: "anti-leg-on",
}


class DhwMode(IntEnum):
    """``dhwOperationSetting`` and the ``dhw-mode`` command parameter (same numbers both ways)."""

    HEAT_PUMP = 1
    ELECTRIC = 2
    ENERGY_SAVER = 3
    HIGH_DEMAND = 4
    VACATION = 5
    POWER_OFF = 6  # status only: set with power-off; power-on restores the previous mode


class OperationMode(IntEnum):
    """``operationMode``: a bitfield of what is *engaged* (not proof the compressor runs)."""

    STANDBY = 0
    HEAT_PUMP = 0x20
    ELEMENT = 0x40
    HEAT_PUMP_AND_ELEMENT = 0x60


class Flag(IntEnum):
    """Device booleans: 1 off, 2 on, 0 unknown/not reported."""

    UNKNOWN = 0
    OFF = 1
    ON = 2


class HeatSource(IntEnum):
    """``currentHeatUse``: the sources the controller *planned* for the current demand."""

    NONE = 0
    HEAT_PUMP = 1
    ELEMENT = 2
    BOTH = 3


class ConnectionStatus(IntEnum):
    """REST ``deviceInfo.connected``."""

    OFFLINE = 1
    ONLINE = 2


# --- topics -------------------------------------------------------------------------------------


def gateway(mac: str) -> str:
    """The per-device topic prefix ``cmd/52/navilink-<mac>``."""
    return f"cmd/{DEVICE_TYPE}/navilink-{mac}"


def status_topic(mac: str) -> str:
    return f"{gateway(mac)}/st"


def did_topic(mac: str) -> str:
    return f"{gateway(mac)}/st/did"


def control_topic(mac: str) -> str:
    return f"{gateway(mac)}/ctrl"


def energy_topic(mac: str) -> str:
    return f"{gateway(mac)}/st/energy-usage-daily-query/rd"


def reservation_read_topic(mac: str) -> str:
    return f"{gateway(mac)}/st/rsv/rd"


def device_subscription(mac: str) -> str:
    """Everything the device publishes under its gateway prefix."""
    return f"{gateway(mac)}/#"


def response_topic(mac: str, client_id: str) -> str:
    """Where status, DID and control replies are requested."""
    return f"{gateway(mac)}/{client_id}/res"


def client_response_prefix(client_id: str) -> str:
    """``cmd/52/<clientID>/res``: energy, reservation and TOU replies land below this."""
    return f"cmd/{DEVICE_TYPE}/{client_id}/res"


def energy_response_topic(client_id: str) -> str:
    return f"{client_response_prefix(client_id)}/energy-usage-daily-query/rd"


def client_subscription(client_id: str) -> str:
    return f"{client_response_prefix(client_id)}/#"


def mac_from_topic(topic: str) -> str | None:
    """The MAC in ``cmd/52/navilink-<mac>/...``, or None for other topics."""
    parts = topic.split("/")
    if len(parts) >= 3 and parts[2].startswith("navilink-"):
        return parts[2][len("navilink-") :]
    return None


def half_c_from_f(deg_f: float) -> int:
    """Setpoints travel in half-degC: 140 F -> 60 C -> 120."""
    return round((deg_f - 32.0) * 5.0 / 9.0 * 2.0)


def f_from_half_c(raw: int) -> float:
    return raw / 2.0 * 9.0 / 5.0 + 32.0


def mode_name(enum: type[IntEnum], value: int | None) -> str | None:
    """A mode number named as its enum member in lower case, ``unknown_<n>`` if not a member."""
    if value is None:
        return None
    try:
        return enum(value).name.lower()
    except ValueError:
        return f"unknown_{value}"


def sql_macros() -> dict[str, str]:
    """``operation_mode_name(m)`` and ``dhw_mode_name(m)``: ``mode_name`` for DuckDB, generated from
    the enums above so the warehouse names modes exactly as Python does."""

    def case(enum: type[IntEnum]) -> str:
        whens = " ".join(f"WHEN {m.value} THEN '{m.name.lower()}'" for m in enum)
        return f"(m) AS CASE m {whens} ELSE 'unknown_' || m END"

    return {"operation_mode_name": case(OperationMode), "dhw_mode_name": case(DhwMode)}
