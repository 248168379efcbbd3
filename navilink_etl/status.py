"""Raw NaviLink wire messages -> typed records; the only home of unit conversions.

Encodings (PROTOCOL.md section 4): setpoints and ``dhwTemperature`` in half-degC, thermistors in
deci-degC, hysteresis settings in deci-K (deltas), energy capacities in counts of 4 Wh, flags
1 off / 2 on / 0 unknown, ``operationMode`` a bitfield. Raw values are kept losslessly next to
everything derived, with ``PARSER_VERSION``, so history can be re-derived when a meaning changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from .errors import PayloadError
from .protocol import Command, DhwMode, Event, Flag

PARSER_VERSION = 1

# The September-2025 firmware's 87 keys, in wire order (PROTOCOL.md 4.3). Note the wire typo
# ``heLowerOnTDiffempSetting``: kept verbatim.
STATUS_KEYS_2025_09: tuple[str, ...] = (
    "command", "outsideTemperature", "specialFunctionStatus", "didReload", "errorCode",
    "subErrorCode", "operationMode", "operationBusy", "freezeProtectionUse", "dhwUse",
    "dhwUseSustained", "dhwTemperature", "dhwTemperatureSetting", "programReservationUse",
    "smartDiagnostic", "faultStatus1", "faultStatus2", "wifiRssi", "ecoUse",
    "dhwTargetTemperatureSetting", "tankUpperTemperature", "tankLowerTemperature",
    "dischargeTemperature", "suctionTemperature", "evaporatorTemperature", "ambientTemperature",
    "targetSuperHeat", "compUse", "eevUse", "evaFanUse", "currentInstPower", "shutOffValveUse",
    "conOvrSensorUse", "wtrOvrSensorUse", "dhwChargePer", "drEventStatus", "vacationDaySetting",
    "vacationDayElapsed", "freezeProtectionTemperature", "antiLegionellaUse",
    "antiLegionellaPeriod", "antiLegionellaOperationBusy", "programReservationType",
    "dhwOperationSetting", "temperatureType", "tempFormulaType", "errorBuzzerUse",
    "currentHeatUse", "currentInletTemperature", "currentStatenum", "targetFanRpm",
    "currentFanRpm", "fanPwm", "dhwTemperature2", "currentDhwFlowRate", "mixingRate", "eevStep",
    "currentSuperHeat", "heatUpperUse", "heatLowerUse", "scaldUse", "airFilterAlarmUse",
    "airFilterAlarmPeriod", "airFilterAlarmElapsed", "cumulatedOpTimeEvaFan",
    "cumulatedDhwFlowRate", "touStatus", "hpUpperOnTempSetting", "hpUpperOffTempSetting",
    "hpLowerOnTempSetting", "hpLowerOffTempSetting", "heUpperOnTempSetting",
    "heUpperOffTempSetting", "heLowerOnTempSetting", "heLowerOffTempSetting",
    "hpUpperOnDiffTempSetting", "hpUpperOffDiffTempSetting", "hpLowerOnDiffTempSetting",
    "hpLowerOffDiffTempSetting", "heUpperOnDiffTempSetting", "heUpperOffDiffTempSetting",
    "heLowerOnTDiffempSetting", "heLowerOffDiffTempSetting", "drOverrideStatus",
    "touOverrideStatus", "totalEnergyCapacity", "availableEnergyCapacity",
)  # fmt: skip

# Added by the controller firmware seen from 2025-10 on (PROTOCOL.md 4.1).
NEWER_FIRMWARE_KEYS: tuple[str, ...] = (
    "heatMinOpTemperature", "recircOperationMode", "recircPumpOperationStatus",
    "recircHotBtnReady", "recircOperationReason", "recircErrorStatus", "recircOperationBusy",
    "recircReservationUse", "recircTempSetting", "recircTemperature", "recircFaucetTemperature",
    "recircDhwFlowRate",
)  # fmt: skip

# In nwp500-python's model with defaults; never seen in a status payload, typed if they appear.
OPTIONAL_KEYS: tuple[str, ...] = (
    "dhwOperationBusy", "freezeProtectionTempMin", "freezeProtectionTempMax",
)  # fmt: skip

KNOWN_KEYS: tuple[str, ...] = STATUS_KEYS_2025_09 + NEWER_FIRMWARE_KEYS + OPTIONAL_KEYS
_KNOWN = frozenset(KNOWN_KEYS)

# Without these a snapshot is useless for analytics: a message lacking one is quarantined.
REQUIRED_KEYS: tuple[str, ...] = (
    "command", "operationMode", "dhwTemperature", "dhwTemperatureSetting",
    "tankUpperTemperature", "tankLowerTemperature", "currentInstPower", "compUse",
    "heatUpperUse", "heatLowerUse", "dhwOperationSetting",
)  # fmt: skip

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_RAW_PREVIEW = 2000  # characters of a bad payload kept in errors and quarantine

WH_PER_COUNT = 4.0  # totalEnergyCapacity / availableEnergyCapacity unit


def half_c(raw: int | None) -> float | None:
    return None if raw is None else raw / 2.0


def deci(raw: int | None) -> float | None:
    return None if raw is None else raw / 10.0


def flag(raw: int | None) -> bool | None:
    """1 off, 2 on, 0 (or anything else) unknown."""
    if raw == Flag.ON:
        return True
    if raw == Flag.OFF:
        return False
    return None


def c_to_f(c: float | None) -> float | None:
    return None if c is None else c * 9.0 / 5.0 + 32.0


class MessageKind:
    REPLY = "reply"  # answer to a status request
    CONTROL_ECHO = "control_echo"  # full snapshot answering a control command
    PUSH = "push"  # device-originated event snapshot
    OTHER = "other"


def message_kind(command: int) -> str:
    if command == Command.STATUS:
        return MessageKind.REPLY
    if command >> 24 == 0x02:
        return MessageKind.CONTROL_ECHO
    if command >> 24 == 0x04 or command == Event.SNAPSHOT:
        return MessageKind.PUSH
    return MessageKind.OTHER


@dataclass(frozen=True, slots=True)
class Envelope:
    """A device->client MQTT message with its ``response`` object (status, feature, energy)."""

    client_id: str | None
    session_id: str | None
    request_topic: str | None
    protocol_version: int | None
    mac: str | None
    additional_value: str | None
    response: Mapping[str, Any]

    @property
    def kind(self) -> str:
        if "status" in self.response:
            return "status"
        if "feature" in self.response or "did" in self.response:
            return "feature"
        if "usage" in self.response or "typeOfUsage" in self.response:
            return "energy"
        return "other"


def _preview(raw: bytes | str | Mapping[str, Any]) -> str:
    if isinstance(raw, bytes):
        return raw[:_RAW_PREVIEW].decode("utf-8", errors="replace")
    if isinstance(raw, str):
        return raw[:_RAW_PREVIEW]
    try:
        return orjson.dumps(raw, default=str).decode()[:_RAW_PREVIEW]
    except (TypeError, orjson.JSONEncodeError):
        return repr(raw)[:_RAW_PREVIEW]


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    return v if isinstance(v, str) else str(v)


def parse_message(raw: bytes | str | Mapping[str, Any]) -> Envelope:
    """Parse one MQTT message as received. Raises ``PayloadError`` with a reason."""
    if isinstance(raw, bytes | bytearray | memoryview | str):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"not JSON: {exc}", raw=_preview(bytes(raw) if not isinstance(raw, str) else raw)) from None
    elif isinstance(raw, Mapping):
        obj = raw
    else:
        raise PayloadError(f"expected JSON text or an object, got {type(raw).__name__}", raw=_preview(repr(raw)))
    if not isinstance(obj, Mapping):
        raise PayloadError(f"message is a JSON {type(obj).__name__}, expected an object", raw=_preview(raw))
    response = obj.get("response")
    if not isinstance(response, Mapping):
        raise PayloadError("message has no 'response' object", raw=_preview(raw))
    pv = obj.get("protocolVersion")
    mac = response.get("macAddress")
    if mac is not None and not isinstance(mac, str):
        raise PayloadError("response.macAddress is not a string", raw=_preview(raw))
    return Envelope(
        client_id=_opt_str(obj, "clientID"),
        session_id=_opt_str(obj, "sessionID"),
        request_topic=_opt_str(obj, "requestTopic"),
        protocol_version=pv if isinstance(pv, int) and not isinstance(pv, bool) else None,
        mac=mac.lower() if mac else None,
        additional_value=_opt_str(response, "additionalValue"),
        response=response,
    )


@dataclass(frozen=True, slots=True)
class RawStatus:
    """The status object's values: known keys as ints (None when absent), unknown keys kept."""

    values: dict[str, int | None]
    extras: dict[str, Any]
    source: Mapping[str, Any] | None = None  # the status object as received (for the content hash)

    def __getitem__(self, key: str) -> int | None:
        return self.values.get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __contains__(self, key: object) -> bool:
        return key in self.values or key in self.extras


_EMPTY_VALUES: dict[str, int | None] = dict.fromkeys(KNOWN_KEYS)
_REQUIRED = frozenset(REQUIRED_KEYS)


def parse_status_object(status: Any, raw_for_errors: Any = None) -> RawStatus:
    """Validate a ``response.status`` object. Unknown keys are kept, not fatal."""
    if not isinstance(status, Mapping):
        raise PayloadError("response.status is not an object", raw=_preview(raw_for_errors or repr(status)))
    # Fast path (the common case): only known keys, all plain ints in range, required ones present.
    # Checked with C-level set/min/max operations; anything unusual takes the explaining path.
    keys = status.keys()
    if keys <= _KNOWN and keys >= _REQUIRED:
        vals = status.values()
        if set(map(type, vals)) == {int} and min(vals) >= _INT64_MIN and max(vals) <= _INT64_MAX:
            values = _EMPTY_VALUES.copy()
            values.update(status)
            return RawStatus(values=values, extras={}, source=status)
    return _parse_status_object_slow(status, raw_for_errors)


def _parse_status_object_slow(status: Mapping[str, Any], raw_for_errors: Any) -> RawStatus:
    where = raw_for_errors if raw_for_errors is not None else status
    values: dict[str, int | None] = _EMPTY_VALUES.copy()
    extras: dict[str, Any] = {}
    for key, value in status.items():
        if key in _KNOWN:
            if type(value) is not int:  # bool is an int subclass: refuse it too
                raise PayloadError(
                    f"status.{key} is {type(value).__name__} {value!r:.40}, expected an integer",
                    raw=_preview(where),
                )
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise PayloadError(f"status.{key} = {value} is out of the 64-bit range", raw=_preview(where))
            values[key] = value
        else:
            extras[str(key)] = value
    for key in REQUIRED_KEYS:
        if values[key] is None:
            raise PayloadError(f"status.{key} is missing", raw=_preview(where))
    return RawStatus(values=values, extras=extras, source=status)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One status snapshot: raw wire values plus typed SI values (units in names).

    The original NaviLink library's names are kept for its users: ``dhw_charge_per`` (%),
    ``dhw_temperature`` and ``dhw_temperature_setting`` (degF), ``operation_mode``,
    ``current_inst_power`` (W).
    """

    raw: RawStatus
    mac: str | None = None
    received_at: datetime | None = None
    session_id: str | None = None
    client_id: str | None = None
    kind: str = MessageKind.OTHER

    def _v(self, key: str) -> int | None:
        return self.raw.values.get(key)

    # --- the original library's names ---------------------------------------------------------
    @property
    def command(self) -> int:
        return self._v("command") or 0

    @property
    def dhw_charge_per(self) -> int | None:
        """The app's "DHW charge" %: an opaque vendor heuristic; report it, no physics from it."""
        return self._v("dhwChargePer")

    dhw_charge_percent = dhw_charge_per

    @property
    def dhw_temperature(self) -> float | None:
        """Tank (upper) water temperature in degF."""
        return c_to_f(self.dhw_temperature_c)

    @property
    def dhw_temperature_setting(self) -> float | None:
        """Setpoint in degF."""
        return c_to_f(self.setpoint_c)

    @property
    def operation_mode(self) -> int | None:
        return self._v("operationMode")

    @property
    def current_inst_power(self) -> int | None:
        return self._v("currentInstPower")

    # --- SI ------------------------------------------------------------------------------------
    @property
    def dhw_temperature_c(self) -> float | None:
        return half_c(self._v("dhwTemperature"))

    @property
    def setpoint_c(self) -> float | None:
        return half_c(self._v("dhwTemperatureSetting"))

    @property
    def tank_upper_c(self) -> float | None:
        return deci(self._v("tankUpperTemperature"))

    @property
    def tank_lower_c(self) -> float | None:
        return deci(self._v("tankLowerTemperature"))

    @property
    def ambient_c(self) -> float | None:
        return deci(self._v("ambientTemperature"))

    @property
    def discharge_c(self) -> float | None:
        return deci(self._v("dischargeTemperature"))

    @property
    def suction_c(self) -> float | None:
        return deci(self._v("suctionTemperature"))

    @property
    def evaporator_c(self) -> float | None:
        return deci(self._v("evaporatorTemperature"))

    @property
    def target_superheat_k(self) -> float | None:
        return deci(self._v("targetSuperHeat"))

    @property
    def current_superheat_k(self) -> float | None:
        return deci(self._v("currentSuperHeat"))

    @property
    def power_w(self) -> int | None:
        return self._v("currentInstPower")

    @property
    def compressor_on(self) -> bool | None:
        return flag(self._v("compUse"))

    @property
    def upper_element_on(self) -> bool | None:
        return flag(self._v("heatUpperUse"))

    @property
    def lower_element_on(self) -> bool | None:
        return flag(self._v("heatLowerUse"))

    @property
    def drawing(self) -> bool | None:
        return flag(self._v("dhwUse"))

    @property
    def heating_demand(self) -> bool | None:
        return flag(self._v("operationBusy"))

    @property
    def dhw_mode(self) -> DhwMode | int | None:
        v = self._v("dhwOperationSetting")
        if v is None:
            return None
        try:
            return DhwMode(v)
        except ValueError:
            return v

    @property
    def full_recovery_wh(self) -> float | None:
        v = self._v("totalEnergyCapacity")
        return None if v is None else v * WH_PER_COUNT

    @property
    def energy_to_setpoint_wh(self) -> float | None:
        v = self._v("availableEnergyCapacity")
        return None if v is None else v * WH_PER_COUNT

    @property
    def usable_energy_wh(self) -> float | None:
        """Stored energy above the device's reference temperature: (total - available) x 4 Wh."""
        t, a = self._v("totalEnergyCapacity"), self._v("availableEnergyCapacity")
        return None if t is None or a is None else (t - a) * WH_PER_COUNT

    @property
    def extras(self) -> dict[str, Any]:
        return self.raw.extras

    def as_dict(self) -> dict[str, Any]:
        """Typed values, for printing and CSV export."""
        return {
            "dhw_charge_percent": self.dhw_charge_per,
            "dhw_temperature_f": self.dhw_temperature,
            "dhw_temperature_setting_f": self.dhw_temperature_setting,
            "operation_mode": self.operation_mode,
            "dhw_mode": int(self.dhw_mode) if self.dhw_mode is not None else None,
            "power_w": self.power_w,
            "tank_upper_c": self.tank_upper_c,
            "tank_lower_c": self.tank_lower_c,
            "ambient_c": self.ambient_c,
            "compressor_on": self.compressor_on,
            "upper_element_on": self.upper_element_on,
            "lower_element_on": self.lower_element_on,
            "drawing": self.drawing,
            "usable_energy_wh": self.usable_energy_wh,
        }


def parse_status(raw: bytes | str | Mapping[str, Any], received_at: datetime | None = None) -> DeviceStatus:
    """Parse a whole status message (reply, control echo or push) into a ``DeviceStatus``."""
    env = parse_message(raw)
    if "status" not in env.response:
        raise PayloadError("message has no response.status", raw=_preview(raw))
    rs = parse_status_object(env.response["status"], raw)
    cmd = rs.values["command"] or 0
    return DeviceStatus(
        raw=rs, mac=env.mac, received_at=received_at, session_id=env.session_id,
        client_id=env.client_id, kind=message_kind(cmd),
    )


# --- storage rows -------------------------------------------------------------------------------

# Columns of the raw status dataset besides one Int64 column per KNOWN_KEYS entry (wire names).
STATUS_META_COLUMNS: tuple[str, ...] = (
    "device", "received_at", "source", "kind", "session_id", "client_id", "parser_version",
    "content_hash", "extra_json",
)  # fmt: skip


def content_hash(status: Mapping[str, Any]) -> str:
    """Stable hash of a status object's content (key order independent)."""
    return hashlib.blake2b(orjson.dumps(status, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


def status_row(st: DeviceStatus, *, received_at: datetime, source: str, device: str | None = None) -> dict[str, Any]:
    """The raw-status row stored in Parquet: every wire value losslessly, plus metadata."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware (UTC)")
    row: dict[str, Any] = {
        "device": device or st.mac,
        "received_at": received_at.astimezone(UTC),
        "source": source,
        "kind": st.kind,
        "session_id": st.session_id,
        "client_id": st.client_id,
        "parser_version": PARSER_VERSION,
        "content_hash": content_hash(st.raw.source if st.raw.source is not None
                                     else {k: v for k, v in st.raw.values.items() if v is not None} | st.raw.extras),
        "extra_json": orjson.dumps(st.raw.extras).decode() if st.raw.extras else None,
    }
    row.update(st.raw.values)
    return row


def status_schema() -> dict[str, Any]:
    """Polars schema of the raw status dataset (partition columns device/date added by the store)."""
    import polars as pl

    schema: dict[str, Any] = {
        "device": pl.String,
        "received_at": pl.Datetime("us", "UTC"),
        "source": pl.String,
        "kind": pl.String,
        "session_id": pl.String,
        "client_id": pl.String,
        "parser_version": pl.Int32,
        "content_hash": pl.String,
        "extra_json": pl.String,
    }
    for k in KNOWN_KEYS:
        schema[k] = pl.Int64
    return schema


# --- other replies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnergyDay:
    """One day of the device's own energy history (EMS): heat pump (hp) and elements (he)."""

    year: int
    month: int
    day: int
    hp_wh: int
    he_wh: int
    hp_h: int
    he_h: int


def _int_field(obj: Mapping[str, Any], key: str, where: str) -> int:
    v = obj.get(key, 0)
    if type(v) is not int:
        raise PayloadError(f"{where}.{key} is {type(v).__name__}, expected an integer", raw=_preview(obj))
    return v


def parse_energy(response: Mapping[str, Any]) -> list[EnergyDay]:
    """``response.usage[{year, month, data[day-1]}]`` -> one EnergyDay per listed day."""
    usage = response.get("usage")
    if not isinstance(usage, list):
        raise PayloadError("energy reply has no 'usage' list", raw=_preview(response))
    days: list[EnergyDay] = []
    for m in usage:
        if not isinstance(m, Mapping) or not isinstance(m.get("data"), list):
            raise PayloadError("energy usage entry lacks a 'data' list", raw=_preview(response))
        year = _int_field(m, "year", "usage")
        month = _int_field(m, "month", "usage")
        if not 1 <= month <= 12:
            raise PayloadError(f"energy usage month {month} out of range", raw=_preview(response))
        for i, d in enumerate(m["data"]):
            if not isinstance(d, Mapping):
                raise PayloadError("energy usage day is not an object", raw=_preview(response))
            days.append(EnergyDay(
                year=year, month=month, day=i + 1,
                hp_wh=_int_field(d, "hpUsage", "data"), he_wh=_int_field(d, "heUsage", "data"),
                hp_h=_int_field(d, "hpTime", "data"), he_h=_int_field(d, "heTime", "data"),
            ))
    return days


@dataclass(frozen=True, slots=True)
class Feature:
    """The DID/feature reply: identity, firmware, capability flags and setpoint range."""

    raw: Mapping[str, Any] = field(default_factory=dict)

    def _half_c_f(self, key: str, default: int) -> float:
        v = self.raw.get(key, default)
        return (v if isinstance(v, int) else default) / 2.0 * 9.0 / 5.0 + 32.0

    @property
    def temperature_min_f(self) -> float:
        return self._half_c_f("dhwTemperatureMin", 70)  # 35 C = 95 F when the DID omits it

    @property
    def temperature_max_f(self) -> float:
        return self._half_c_f("dhwTemperatureMax", 131)

    @property
    def controller_serial(self) -> str | None:
        v = self.raw.get("controllerSerialNumber")
        return str(v) if v is not None else None

    @property
    def volume_code(self) -> int | None:
        v = self.raw.get("volumeCode")
        return v if isinstance(v, int) else None


def parse_feature(response: Mapping[str, Any]) -> Feature:
    feat = response.get("feature", response.get("did"))
    if not isinstance(feat, Mapping):
        raise PayloadError("DID reply has no 'feature' object", raw=_preview(response))
    return Feature(raw=dict(feat))


def utcnow() -> datetime:
    return datetime.now(UTC)
