"""One NWP500 on the account: status, DID, controls, the device's energy history and TOU plan.

Requests go over MQTT through the client's session; values are validated here before anything
is sent (setpoints in half-degC, docs/protocol.md 3.5) and replies are parsed only by ``status``.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import DeviceOfflineError, NaviLinkError, PayloadError, RequestTimeoutError, ValidationError
from ..identity import normalize_mac
from ..protocol import (
    CONTROL_MODE_STRINGS,
    DEVICE_TYPE,
    PROTOCOL_VERSION,
    Command,
    ConnectionStatus,
    DhwMode,
    control_topic,
    did_topic,
    energy_response_topic,
    energy_topic,
    f_from_half_c,
    half_c_from_f,
    response_topic,
    status_topic,
)
from ..status import DeviceStatus, EnergyDay, Feature, parse_energy, parse_feature, parse_status
from .mqtt import new_session_id

if TYPE_CHECKING:
    from .client import NaviLinkClient

DEFAULT_MIN_F = 95.0
DEFAULT_MAX_F = 150.0
VACATION_DAYS = (1, 30)
_MODE_NAMES = {
    "heat_pump": DhwMode.HEAT_PUMP, "heatpump": DhwMode.HEAT_PUMP,
    "electric": DhwMode.ELECTRIC, "energy_saver": DhwMode.ENERGY_SAVER,
    "hybrid": DhwMode.ENERGY_SAVER, "high_demand": DhwMode.HIGH_DEMAND,
    "vacation": DhwMode.VACATION,
}


# The original library's set_operation_mode numbers (its readings of ``operationMode``, docs/protocol.md
# 5.2) -> the DHW mode that produces them; 0 (off/standby) is the power-off command.
ORIGINAL_OPERATION_MODES: dict[int, DhwMode | None] = {
    0: None, 32: DhwMode.HEAT_PUMP, 33: DhwMode.ELECTRIC, 34: DhwMode.ENERGY_SAVER,
}
_OFF_NAMES = frozenset({"off", "standby", "power_off"})


def coerce_mode(mode: DhwMode | int | str) -> DhwMode:
    """DhwMode, the original library's int 1-5, or a name such as "heat_pump"."""
    if isinstance(mode, str):
        key = mode.strip().lower().replace("-", "_").replace(" ", "_")
        if key in _MODE_NAMES:
            return _MODE_NAMES[key]
        raise ValidationError(f"unknown DHW mode {mode!r}; use one of {sorted(set(_MODE_NAMES) - {'heatpump', 'hybrid'})}")
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise ValidationError(f"DHW mode must be a DhwMode, an int 1-5 or a name, not {type(mode).__name__}")
    if not 1 <= int(mode) <= 5:
        raise ValidationError(f"DHW mode {int(mode)} is out of range; use 1-5 "
                              "(power off is power_off(), not a mode)")
    return DhwMode(int(mode))


MAX_TEXT = 128  # longest deviceName / additionalValue kept from the device list


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31


def _optional_int(info: Mapping[str, Any], key: str) -> int | None:
    v = info.get(key)
    if v is None or _is_int(v):
        return v
    raise PayloadError(f"device list entry's {key} is {type(v).__name__} {repr(v)[:40]}, not an integer",
                       field=key)


def _text(info: Mapping[str, Any], key: str, default: str) -> str:
    v = info.get(key)
    if v is None or v == "":
        return default
    if _is_int(v):
        return str(v)
    if not isinstance(v, str) or len(v) > MAX_TEXT or not v.isprintable():
        raise PayloadError(f"device list entry's {key} is not a short printable text ({repr(v)[:40]})",
                           field=key)
    return v


def _name(info: Mapping[str, Any]) -> str:
    """The user's device name, shown as is; control characters become spaces, at most 128 characters."""
    v = info.get("deviceName")
    if v is None or v == "":
        return "NWP500"
    if not isinstance(v, str):
        raise PayloadError(f"device list entry's deviceName is {type(v).__name__}, not text", field="deviceName")
    return "".join(c if c.isprintable() else " " for c in v[:MAX_TEXT]).strip() or "NWP500"


def device_identity(item: Any) -> dict[str, Any]:
    """A device-list entry checked field by field: canonical MAC, typed fields, or ``PayloadError``."""
    if not isinstance(item, Mapping) or not isinstance(item.get("deviceInfo"), Mapping):
        raise PayloadError("device list entry has no deviceInfo object", field="deviceInfo")
    info = item["deviceInfo"]
    mac = normalize_mac(info.get("macAddress"))
    if mac is None:
        raise PayloadError(f"device list entry's macAddress {repr(info.get('macAddress'))[:40]} is not 12 hex "
                           "digits", field="macAddress")
    device_type = _optional_int(info, "deviceType")
    loc = item.get("location")
    return {
        "mac": mac, "additional_value": _text(info, "additionalValue", ""),
        "name": _name(info), "home_seq": _optional_int(info, "homeSeq"),
        "device_type": device_type if device_type else DEVICE_TYPE,
        "connected": _optional_int(info, "connected"),
        "location": dict(loc) if isinstance(loc, Mapping) else {}, "info": dict(info),
    }


def check_energy_days(days: list[EnergyDay], year: int, months: list[int]) -> list[EnergyDay]:
    """Days of the asked year and months only; days a month does not have (padding) are dropped."""
    out = []
    for d in days:
        if d.year != year or d.month not in months:
            raise PayloadError(f"energy reply holds {d.year}-{d.month:02d}, which was not asked for "
                               f"({year}, months {months})", field="usage")
        if 1 <= d.day <= calendar.monthrange(year, d.month)[1]:
            out.append(d)
    return out


def read_energy_reply(response: Any, year: int, months: list[int], *, device: str | None = None) -> list[EnergyDay]:
    """An energy reply's days; anything malformed is a ``PayloadError``, never another exception."""
    try:
        if not isinstance(response, Mapping):
            raise PayloadError("energy reply has no response object", field="response")
        return check_energy_days(parse_energy(response), year, months)
    except NaviLinkError:
        raise
    except Exception as exc:  # parse_energy must not let anything else out of the client
        raise PayloadError(f"energy reply could not be read: {type(exc).__name__}: {str(exc)[:120]}",
                           device=device) from None


class NaviLinkDevice:
    """A device from the REST list. ``online`` is the REST ``connected`` flag at listing time.

    A malformed list entry raises ``PayloadError`` (the client skips it and reports it).
    """

    def __init__(self, client: NaviLinkClient, item: dict[str, Any]) -> None:
        ident = device_identity(item)
        self._client = client
        self.mac: str = ident["mac"]
        self.additional_value: str = ident["additional_value"]
        self.name: str = ident["name"]
        self.home_seq: int | None = ident["home_seq"]
        self.device_type: int = ident["device_type"]
        self.connected_code: int | None = ident["connected"]
        self.online: bool = self.connected_code == ConnectionStatus.ONLINE
        self.location: dict[str, Any] = ident["location"]
        self.info: dict[str, Any] = ident["info"]
        self.feature: Feature | None = None
        self.last_status: DeviceStatus | None = None

    # --- the original library's names ------------------------------------------------------------
    @property
    def mac_address(self) -> str:
        """The MAC as 12 lower-case hex digits (the original's name for ``mac``)."""
        return self.mac

    @property
    def connected(self) -> int | None:
        """The REST ``connected`` code at listing time: 2 online, 1 offline (the original's field)."""
        return self.connected_code

    @property
    def is_connected(self) -> bool:
        """True when the cloud lists the device online, so MQTT requests can be answered.

        Refreshed by ``get_connectivity_status()`` and ``client.get_devices()``."""
        return self.online

    @property
    def model(self) -> str:
        """The model name when the cloud gives one, else "NWP500"."""
        v = self.info.get("modelName") or self.info.get("model")
        return v if isinstance(v, str) and v.isprintable() and v else "NWP500"

    async def get_connectivity_status(self) -> dict[str, Any]:
        """Ask the cloud (REST ``/device/info``) whether the device is online now.

        Returns ``{"device_connected": 1 or 0, "connected": <REST code>}`` as the original did."""
        data = await self.get_info()
        info = data.get("deviceInfo")
        code = info.get("connected") if isinstance(info, Mapping) else None
        if _is_int(code):
            self.connected_code = code
            self.online = code == ConnectionStatus.ONLINE
        return {"device_connected": int(self.online), "connected": self.connected_code}

    def __repr__(self) -> str:
        return (f"NaviLinkDevice(mac={self.mac!r}, name={self.name!r}, "
                f"online={self.online}, home_seq={self.home_seq})")

    # --- requests ---------------------------------------------------------------------------------
    def _message(self, command: int, topic: str, reply_topic: str, client_id: str | None = None,
                 **extra: Any) -> dict[str, Any]:
        request: dict[str, Any] = {"command": int(command), "deviceType": self.device_type,
                                   "macAddress": self.mac, "additionalValue": self.additional_value}
        request.update(extra)
        return {"clientID": client_id or self._client.client_id, "sessionID": new_session_id(),
                "protocolVersion": PROTOCOL_VERSION, "request": request,
                "requestTopic": topic, "responseTopic": reply_topic}

    async def _request(self, command: int, topic: str, kind: str, timeout: float | None,  # noqa: ASYNC109
                       reply_topic: Callable[[str], str] | None = None, **extra: Any) -> tuple[Any, bytes, Any]:
        session = await self._client._mqtt_for(self)
        cid = session.client_id  # the connection this device's subscription is on receives the reply
        msg = self._message(command, topic, reply_topic(cid) if reply_topic else response_topic(self.mac, cid),
                            cid, **extra)
        t = timeout if timeout is not None else self._client.config.request_timeout
        try:
            return await session.request(topic, msg, mac=self.mac, kind=kind, timeout=t)
        except RequestTimeoutError as exc:
            if not self.online:
                raise DeviceOfflineError(
                    f"device {self.mac} ({self.name}) is offline (the cloud lists it as disconnected) "
                    f"and did not answer within {t:g} s; check its Wi-Fi and power",
                    device=self.mac,
                ) from exc
            raise

    async def get_status(self, timeout: float | None = None) -> DeviceStatus:  # noqa: ASYNC109
        """Ask for a full status snapshot (``G/st``, command 16777219)."""
        _, payload, at = await self._request(Command.STATUS, status_topic(self.mac), "status", timeout)
        st = parse_status(payload, received_at=at)
        self.last_status = st
        return st

    async def request_status(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Ask for a status snapshot and wait for the reply without parsing it: for a caller that
        stores every message from the client's message listener (the collector)."""
        await self._request(Command.STATUS, status_topic(self.mac), "status", timeout)

    async def get_feature(self, timeout: float | None = None) -> Feature:  # noqa: ASYNC109
        """The DID/feature reply (``G/st/did``): firmware, capabilities, setpoint range."""
        env, _, _ = await self._request(Command.DEVICE_INFO, did_topic(self.mac), "feature", timeout)
        self.feature = parse_feature(env.response)
        return self.feature

    async def _control(self, command: Command, param: list[int]) -> DeviceStatus:
        if self.feature is None:  # the device's DID comes before any control (docs/protocol.md 3.5)
            await self.get_feature()
        _, payload, at = await self._request(
            command, control_topic(self.mac), "status", None,
            mode=CONTROL_MODE_STRINGS[command], param=param, paramStr="")
        st = parse_status(payload, received_at=at)
        self.last_status = st
        return st

    # --- controls ---------------------------------------------------------------------------------
    def temperature_range_f(self) -> tuple[float, float]:
        if self.feature is None:
            return DEFAULT_MIN_F, DEFAULT_MAX_F
        return self.feature.temperature_min_f, self.feature.temperature_max_f

    async def set_temperature(self, deg_f: float) -> DeviceStatus:
        """Set the DHW setpoint in degF (sent as half-degC); returns the device's echo."""
        if isinstance(deg_f, bool) or not isinstance(deg_f, int | float) or not math.isfinite(deg_f):
            raise ValidationError(f"temperature must be a number of degF, got {deg_f!r}")
        if self.feature is None:
            await self.get_feature()
        raw = half_c_from_f(deg_f)
        if self.feature is not None and "dhwTemperatureMin" in self.feature.raw:
            lo_raw = int(self.feature.raw.get("dhwTemperatureMin", 70))
            hi_raw = int(self.feature.raw.get("dhwTemperatureMax", 131))
            ok = lo_raw <= raw <= hi_raw
            lo, hi = f_from_half_c(lo_raw), f_from_half_c(hi_raw)
        else:
            lo, hi = DEFAULT_MIN_F, DEFAULT_MAX_F
            ok = lo <= deg_f <= hi
        if not ok:
            src = "its DID" if self.feature is not None and "dhwTemperatureMin" in self.feature.raw else "the default"
            raise ValidationError(f"{deg_f:g} degF is outside this device's setpoint range {lo:.0f}-{hi:.0f} degF "
                                  f"(from {src}); the original library's 80-140 degF is not what the device "
                                  "accepts: pick a value in its range", device=self.mac)
        return await self._control(Command.DHW_TEMPERATURE, [raw])

    async def set_dhw_mode(self, mode: DhwMode | int | str, vacation_days: int | None = None) -> DeviceStatus:
        """Heat pump / electric / energy saver / high demand, or vacation for 1-30 days."""
        m = coerce_mode(mode)
        if m is DhwMode.VACATION:
            if isinstance(vacation_days, bool) or not isinstance(vacation_days, int) \
                    or not VACATION_DAYS[0] <= vacation_days <= VACATION_DAYS[1]:
                raise ValidationError(f"vacation needs vacation_days 1-30, got {vacation_days!r}")
            param = [int(m), vacation_days]
        else:
            if vacation_days is not None:
                raise ValidationError("vacation_days only applies to the vacation mode")
            param = [int(m)]
        return await self._control(Command.DHW_MODE, param)

    async def set_operation_mode(self, mode: DhwMode | int | str,
                                 vacation_days: int | None = None) -> DeviceStatus:
        """The original library's call: 0 off/standby (power off), 32 heat pump, 33 electric only,
        34 hybrid (energy saver); also a ``DhwMode``, its number 1-5 or a name ("heat_pump", "off")."""
        if isinstance(mode, str) and mode.strip().lower().replace("-", "_").replace(" ", "_") in _OFF_NAMES:
            return await self.power_off()
        if _is_int(mode) and not isinstance(mode, DhwMode) and int(mode) in ORIGINAL_OPERATION_MODES:
            target = ORIGINAL_OPERATION_MODES[int(mode)]
            return await (self.power_off() if target is None else self.set_dhw_mode(target))
        return await self.set_dhw_mode(mode, vacation_days)

    async def power_on(self) -> DeviceStatus:
        return await self._control(Command.POWER_ON, [])

    async def power_off(self) -> DeviceStatus:
        return await self._control(Command.POWER_OFF, [])

    turn_on = power_on
    turn_off = power_off

    # --- history and plans ------------------------------------------------------------------------
    async def get_energy_usage(self, year: int, months: list[int] | int,
                               timeout: float | None = None) -> list[EnergyDay]:  # noqa: ASYNC109
        """The device's own daily energy history (EMS) for ``months`` of one ``year``.

        Any malformed reply is a ``PayloadError`` (never another exception type)."""
        ms = [months] if isinstance(months, int) else list(months)
        if not ms or any(isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 12 for m in ms):
            raise ValidationError(f"months must be 1-12, got {months!r}")
        if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2100:
            raise ValidationError(f"year must be a four-digit year, got {year!r}")
        env, _, _ = await self._request(
            Command.ENERGY_USAGE, energy_topic(self.mac), "energy", timeout,
            reply_topic=energy_response_topic, month=ms, year=year)
        return read_energy_reply(env.response, year, ms, device=self.mac)

    async def get_info(self) -> dict[str, Any]:
        """REST ``/device/info``; its deviceInfo lacks mac/additionalValue, so ours are kept."""
        data = await self._client.rest.device_info(self._client.user_id, self.mac, self.additional_value)
        info = data.get("deviceInfo")
        if isinstance(info, dict):
            self.info.update(info)
            self.info["macAddress"], self.info["additionalValue"] = self.mac, self.additional_value
        return data

    async def get_firmware(self) -> list[dict[str, Any]]:
        return await self._client.rest.firmware_info(self._client.user_id, self.mac, self.additional_value)

    async def get_tou(self) -> dict[str, Any]:
        """The TOU plan over REST ({} when the account has none); a malformed plan is a ``PayloadError``.

        Needs the controller serial number from the DID."""
        if self.feature is None:
            await self.get_feature()
        serial = self.feature.controller_serial if self.feature else None
        if not serial:
            raise ValidationError("the device's DID has no controllerSerialNumber; TOU cannot be read",
                                  device=self.mac)
        return await self._client.rest.tou(self._client.user_id, self.mac, self.additional_value,
                                           serial, self._client.user_type)
