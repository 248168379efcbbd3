"""Raw NaviLink wire messages -> typed records, every value range-checked against the field table
(``fields.py``) so anything returned can be stored; raw values are kept losslessly, with
``PARSER_VERSION``, so history can be re-derived when a meaning changes."""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar, overload

import orjson

from . import physics
from .errors import PayloadError
from .fields import BY_KEY, BY_SI, DECODE, DERIVED_BY_SI, FIELDS, HALF, Field
from .identity import normalize_mac
from .protocol import Command, DhwMode, Event, OperationMode, mode_name

PARSER_VERSION = 1

# Key sets by firmware, in wire order (the table's order).
STATUS_KEYS_2025_09: tuple[str, ...] = tuple(f.key for f in FIELDS if f.firmware == "2025-09")
NEWER_FIRMWARE_KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS if f.firmware == "2025-10")
OPTIONAL_KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS if f.firmware == "optional")
KNOWN_KEYS: tuple[str, ...] = STATUS_KEYS_2025_09 + NEWER_FIRMWARE_KEYS + OPTIONAL_KEYS
_KNOWN = frozenset(KNOWN_KEYS)

# Without these a snapshot is useless for analytics: a message lacking one is quarantined.
REQUIRED_KEYS: tuple[str, ...] = tuple(f.key for f in FIELDS if f.required)

# The usual firmware "no value" markers: all ones (8 to 64 bits, and -1) and the signed extremes.
# A known key holding one outside its field's range is *unknown*: None, with the raw value kept
# (RawStatus.unknown, stored in extra_json). Any other value outside the range is refused.
UNKNOWN_MARKERS = frozenset(
    {2**8 - 1, 2**16 - 1, 2**32 - 1, 2**64 - 1, -1}
    | {2**15 - 1, -(2**15), 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)}
)

_LO: dict[str, int] = {f.key: f.lo for f in FIELDS}
_HI: dict[str, int] = {f.key: f.hi for f in FIELDS}
_RAW_PREVIEW = 2000  # characters of a bad payload kept in errors and quarantine
_MAX_ID_CHARS = 256  # clientID, sessionID, requestTopic, additionalValue


def c_to_f(c: float | None) -> float | None:
    return None if c is None else physics.c_to_f(c)


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


def _preview(raw: object) -> str:
    """A prefix of ``raw`` for errors and quarantine; never raises."""
    try:
        if isinstance(raw, bytes | bytearray | memoryview):
            return bytes(raw[:_RAW_PREVIEW]).decode("utf-8", errors="replace")
        if isinstance(raw, str):
            return raw[:_RAW_PREVIEW].encode("utf-8", errors="replace").decode()
        return orjson.dumps(raw, default=str).decode()[:_RAW_PREVIEW]
    except Exception:  # huge ints, deep nesting, odd objects: describe instead
        try:
            return repr(raw)[:_RAW_PREVIEW].encode("utf-8", errors="replace").decode()
        except Exception:
            return f"<unprintable {type(raw).__name__}>"


def _show(v: object) -> str:
    """A short, safe rendering of one value for an error message."""
    if type(v) is int and not -(10**30) < v < 10**30:
        return f"{'-' if v < 0 else ''}<{v.bit_length()}-bit integer>"
    if isinstance(v, float | bool):
        return repr(v)
    return _preview(v)[:40]


def _opt_str(obj: Mapping[str, Any], key: str, where: str, raw: object) -> str | None:
    """An identifier string (an integer is accepted and rendered); None when absent."""
    v = obj.get(key)
    if v is None:
        return None
    if type(v) is str and len(v) <= _MAX_ID_CHARS and v.isascii():  # the common case
        return v
    if type(v) is int and -(2**63) <= v < 2**63:
        return str(v)
    if not isinstance(v, str):
        raise PayloadError(f"{where}.{key} is {type(v).__name__} {_show(v)}, expected a string",
                           raw=_preview(raw))
    if len(v) > _MAX_ID_CHARS:
        raise PayloadError(f"{where}.{key} is {len(v)} characters long, more than {_MAX_ID_CHARS}",
                           raw=_preview(raw))
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(f"{where}.{key} is not valid Unicode (a lone surrogate)", raw=_preview(raw)) from None
    return v


_MACS: dict[str, str] = {}  # body MAC as sent -> canonical MAC


def parse_message(raw: bytes | str | Mapping[str, Any]) -> Envelope:
    """Parse one MQTT message as received. Raises ``PayloadError`` with a reason."""
    if isinstance(raw, bytes | bytearray | memoryview | str):
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"not JSON: {exc}", raw=_preview(raw)) from None
    elif isinstance(raw, Mapping):
        obj = raw
    else:
        raise PayloadError(f"expected JSON text or an object, got {type(raw).__name__}", raw=_preview(raw))
    if not isinstance(obj, Mapping):
        raise PayloadError(f"message is a JSON {type(obj).__name__}, expected an object", raw=_preview(raw))
    response = obj.get("response")
    if not isinstance(response, Mapping):
        raise PayloadError("message has no 'response' object", raw=_preview(raw))
    pv = obj.get("protocolVersion")
    body_mac = response.get("macAddress")
    mac = None
    if body_mac is not None and body_mac != "":
        mac = _MACS.get(body_mac) if type(body_mac) is str else None
        if mac is None:
            mac = normalize_mac(body_mac)
            if mac is not None and len(_MACS) < 4096:  # a handful of devices: memoise the check
                _MACS[body_mac] = mac
        if mac is None:
            raise PayloadError(f"response.macAddress {_show(body_mac)} is not 12 hex digits",
                               raw=_preview(raw), field="response.macAddress")
    return Envelope(
        client_id=_opt_str(obj, "clientID", "message", raw),
        session_id=_opt_str(obj, "sessionID", "message", raw),
        request_topic=_opt_str(obj, "requestTopic", "message", raw),
        protocol_version=pv if type(pv) is int and 0 <= pv <= 255 else None,
        mac=mac,
        additional_value=_opt_str(response, "additionalValue", "response", raw),
        response=response,
    )


@dataclass(frozen=True, slots=True)
class RawStatus:
    """The status object's values: known keys as in-range ints (None when absent or unknown),
    unknown keys kept, and the "unknown" markers the known keys held."""

    values: dict[str, int | None]
    extras: dict[str, Any]
    source: Mapping[str, Any] | None = None  # the status object as received (for the content hash)
    unknown: dict[str, int] = field(default_factory=dict)  # key -> marker (e.g. 2**64 - 1)

    def __getitem__(self, key: str) -> int | None:
        return self.values.get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __contains__(self, key: object) -> bool:
        return key in self.values or key in self.extras


_EMPTY_VALUES: dict[str, int | None] = dict.fromkeys(KNOWN_KEYS)
_REQUIRED = frozenset(REQUIRED_KEYS)


def _compile_range_check(keys: tuple[str, ...]) -> Callable[..., bool]:
    """A range check over the values of ``keys`` (in that order) compiled from the table: one
    chained comparison per field, because the interpreter compares small ints far faster than any
    loop over (lo, hi) pairs, and this is the parser's hot path."""
    names = [f"v{i}" for i in range(len(keys))]
    conds = " and ".join(f"{_LO[k]} <= {n} <= {_HI[k]}" for k, n in zip(keys, names, strict=True))
    namespace: dict[str, Any] = {}
    exec(f"def in_range({', '.join(names)}):\n    return {conds}\n", namespace)  # noqa: S102 - our own text
    check: Callable[..., bool] = namespace["in_range"]
    return check


# key order -> its compiled range check; seeded with the firmwares' orders, grown (up to a bound)
# by any other order of known keys that includes the required ones
_RANGE_CHECKS: dict[tuple[str, ...], Callable[..., bool]] = {
    ks: _compile_range_check(ks) for ks in (STATUS_KEYS_2025_09, STATUS_KEYS_2025_09 + NEWER_FIRMWARE_KEYS)
}
_MAX_RANGE_CHECKS = 64


def _range_check_for(order: tuple[str, ...]) -> Callable[..., bool] | None:
    check = _RANGE_CHECKS.get(order)
    if check is None and len(_RANGE_CHECKS) < _MAX_RANGE_CHECKS:
        keys = set(order)
        if keys <= _KNOWN and keys >= _REQUIRED:
            check = _RANGE_CHECKS[order] = _compile_range_check(order)
    return check


def parse_status_object(status: Any, raw_for_errors: Any = None) -> RawStatus:
    """Validate a ``response.status`` object against the field table. Unknown keys are kept."""
    if not isinstance(status, Mapping):
        raise PayloadError("response.status is not an object",
                           raw=_preview(raw_for_errors if raw_for_errors is not None else status))
    # Fast path (the common case): a known order of known keys with the required ones, all plain
    # ints within their fields' ranges. Anything else is explained by the slow path.
    if type(status) is dict:
        in_range = _range_check_for(tuple(status))
        if in_range is not None:
            vals = status.values()
            if set(map(type, vals)) == {int} and in_range(*vals):
                values = _EMPTY_VALUES.copy()
                values.update(status)
                return RawStatus(values=values, extras={}, source=status)
    return _parse_status_object_slow(status, raw_for_errors)


def _range_reason(f: Field) -> str:
    enc = DECODE[f.encoding]
    if f.unit and f.encoding.value not in ("raw", "watts", "flag"):
        return f"{f.encoding.value}: {enc(f.lo)}..{enc(f.hi)} {f.unit}"
    return f"{f.encoding.value}{' ' + f.unit if f.unit else ''}"


def _parse_status_object_slow(status: Mapping[str, Any], raw_for_errors: Any) -> RawStatus:
    where = raw_for_errors if raw_for_errors is not None else status
    values: dict[str, int | None] = _EMPTY_VALUES.copy()
    extras: dict[str, Any] = {}
    unknown: dict[str, int] = {}
    for key, value in status.items():
        if not isinstance(key, str):
            raise PayloadError(f"status has a {type(key).__name__} key, expected strings", raw=_preview(where))
        f = BY_KEY.get(key)
        if f is None:
            extras[key] = value
        elif value is None:  # JSON null: the device did not say; as if absent
            continue
        elif type(value) is not int:  # bool is an int subclass: refuse it too; floats too
            raise PayloadError(
                f"status.{key} is {type(value).__name__} {_show(value)}, expected an integer",
                raw=_preview(where), field=key)
        elif f.lo <= value <= f.hi:
            values[key] = value
        elif value in UNKNOWN_MARKERS and not f.required:
            unknown[key] = value
        else:
            what = "the 'unknown' marker in a required field" if value in UNKNOWN_MARKERS else "out of range"
            raise PayloadError(
                f"status.{key} = {_show(value)} is {what} (raw {f.lo}..{f.hi}, {_range_reason(f)})",
                raw=_preview(where), field=key)
    for key in REQUIRED_KEYS:
        if values[key] is None:
            raise PayloadError(f"status.{key} is missing", raw=_preview(where), field=key)
    source = dict(status)
    try:  # whatever came in must be storable as JSON (extra_json, the content hash)
        orjson.dumps(source, option=orjson.OPT_SORT_KEYS)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"status has a value that cannot be stored: {exc}", raw=_preview(where)) from None
    return RawStatus(values=values, extras=extras, source=source, unknown=unknown)


T = TypeVar("T")


class _Wire(Generic[T]):
    """A ``DeviceStatus`` attribute decoded from the field whose SI name is the attribute's name
    (an alias keeps the first name's field)."""

    __slots__ = ("_decode", "_key")

    def __init__(self) -> None:
        self._key = ""
        self._decode: Callable[[int], Any] = int

    def __set_name__(self, owner: type, name: str) -> None:
        if not self._key:
            f = BY_SI[name]
            self._key, self._decode = f.key, DECODE[f.encoding]

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Wire[T]: ...
    @overload
    def __get__(self, obj: DeviceStatus, owner: type | None = None) -> T | None: ...
    def __get__(self, obj: DeviceStatus | None, owner: type | None = None) -> T | _Wire[T] | None:
        if obj is None:
            return self
        v = obj.raw.values.get(self._key)
        return None if v is None else self._decode(v)  # type: ignore[no-any-return]


class _Derived:
    """A ``DeviceStatus`` attribute computed from two fields (``fields.DERIVED``)."""

    __slots__ = ("_d",)

    def __set_name__(self, owner: type, name: str) -> None:
        if not hasattr(self, "_d"):
            self._d = DERIVED_BY_SI[name]

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Derived: ...
    @overload
    def __get__(self, obj: DeviceStatus, owner: type | None = None) -> float | None: ...
    def __get__(self, obj: DeviceStatus | None, owner: type | None = None) -> float | _Derived | None:
        if obj is None:
            return self
        a, b = (obj.raw.values.get(k) for k in self._d.keys)
        return None if a is None or b is None else self._d.py(a, b)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One status snapshot: raw wire values plus typed SI values (units in names), each decoded
    as the field table says (an attribute named like a field's SI name is that field).

    The original NaviLink library's names are kept for its users: ``dhw_charge_per`` and
    ``dhw_charge_percent`` (%), ``dhw_temperature``, ``dhw_temperature_setting``,
    ``tank_upper_temperature`` and ``tank_lower_temperature`` (degF), ``operation_mode`` (raw, named
    by ``operation_state``), ``current_inst_power`` (W, elements included), ``error_code``.
    """

    raw: RawStatus
    mac: str | None = None
    received_at: datetime | None = None
    session_id: str | None = None
    client_id: str | None = None
    kind: str = MessageKind.OTHER

    def _v(self, key: str) -> int | None:
        return self.raw.values.get(key)

    # --- SI, from the field table ---------------------------------------------------------------
    operation_mode = _Wire[int]()
    setpoint_c = _Wire[float]()
    dhw_temperature_c = _Wire[float]()
    min_setpoint_c = _Wire[float]()
    tank_upper_c = _Wire[float]()
    tank_lower_c = _Wire[float]()
    tank_mean_c = _Derived()
    ambient_c = _Wire[float]()
    discharge_c = _Wire[float]()
    suction_c = _Wire[float]()
    evaporator_c = _Wire[float]()
    target_superheat_k = _Wire[float]()
    current_superheat_k = _Wire[float]()
    power_w = _Wire[int]()
    compressor_on = _Wire[bool]()
    upper_element_on = _Wire[bool]()
    lower_element_on = _Wire[bool]()
    drawing = _Wire[bool]()
    heating_demand = _Wire[bool]()
    fan_on = _Wire[bool]()
    anti_legionella_active = _Wire[bool]()
    planned_heat_source = _Wire[int]()
    stored_wh = _Derived()
    energy_to_setpoint_wh = _Wire[float]()
    full_recovery_wh = _Wire[float]()
    dhw_charge_pct = _Wire[int]()
    error_code = _Wire[int]()
    sub_error_code = _Wire[int]()
    vacation_days = _Wire[int]()
    state_code = _Wire[int]()

    # --- the original library's names -----------------------------------------------------------
    current_inst_power = power_w
    usable_energy_wh = stored_wh  # stored energy above the device's reference temperature

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
        """Water temperature near the top of the tank in degF (``dhwTemperature``, docs/protocol.md
        4.3 #12); the original library called it the hot-water outlet temperature."""
        return c_to_f(self.dhw_temperature_c)

    @property
    def dhw_temperature_setting(self) -> float | None:
        """Setpoint in degF."""
        return c_to_f(self.setpoint_c)

    @property
    def tank_upper_temperature(self) -> float | None:
        """Upper tank thermistor in degF (``tankUpperTemperature``, deci-degC; docs/protocol.md 4.3
        #21). The original library read it as 0.1 degF from the cold inlet: it is the tank's top."""
        return c_to_f(self.tank_upper_c)

    @property
    def tank_lower_temperature(self) -> float | None:
        """Lower tank thermistor in degF (``tankLowerTemperature``, deci-degC; docs/protocol.md 4.3
        #22). The original library took it for the heat pump's ambient air; that is ``ambient_c``."""
        return c_to_f(self.tank_lower_c)

    @property
    def operation_state(self) -> str | None:
        """``operation_mode`` named: "standby", "heat_pump", "element" or "heat_pump_and_element"
        (what is engaged, docs/protocol.md 5.2; the original's 33/34 never occur), else "unknown_<n>"."""
        return mode_name(OperationMode, self.operation_mode)

    # raw on/off flags (1 off, 2 on) under the original library's names
    @property
    def comp_use(self) -> int | None:
        return self._v("compUse")

    @property
    def heat_upper_use(self) -> int | None:
        return self._v("heatUpperUse")

    @property
    def heat_lower_use(self) -> int | None:
        return self._v("heatLowerUse")

    @property
    def eva_fan_use(self) -> int | None:
        return self._v("evaFanUse")

    @property
    def wifi_rssi(self) -> int | None:
        """Raw, positive (59-61 seen); not dBm (docs/protocol.md 4.3 #18)."""
        return self._v("wifiRssi")

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
    def extras(self) -> dict[str, Any]:
        return self.raw.extras

    def si(self) -> dict[str, Any]:
        """Every value with an SI name in the field table (plus the derived ones), by that name."""
        out = {name: getattr(self, name) for name in BY_SI}
        out |= {name: getattr(self, name) for name in DERIVED_BY_SI}
        return out

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
    extra = st.raw.extras | st.raw.unknown if st.raw.unknown else st.raw.extras
    row: dict[str, Any] = {
        "device": device or st.mac,
        "received_at": received_at.astimezone(UTC),
        "source": source,
        "kind": st.kind,
        "session_id": st.session_id,
        "client_id": st.client_id,
        "parser_version": PARSER_VERSION,
        "content_hash": content_hash(st.raw.source if st.raw.source is not None
                                     else {k: v for k, v in st.raw.values.items() if v is not None} | extra),
        # unknown keys, and the markers of known ones under their own key (the payload is rebuilt
        # as the known columns | extra_json)
        "extra_json": orjson.dumps(extra).decode() if extra else None,
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


ENERGY_YEAR_MIN = 2015  # the NWP500 and its cloud are younger
DAY_WH_MAX = 24 * 7200  # Wh a 30 A, 240 V circuit can deliver in a day (per source and in sum)
DAY_H_MAX = 24
_ENERGY_KEYS = (("hpUsage", DAY_WH_MAX), ("heUsage", DAY_WH_MAX), ("hpTime", DAY_H_MAX),
                ("heTime", DAY_H_MAX))


def _int_field(obj: Mapping[str, Any], key: str, where: str, lo: int, hi: int, raw: object) -> int:
    v = obj.get(key, 0)
    if type(v) is not int:
        raise PayloadError(f"{where}.{key} is {type(v).__name__} {_show(v)}, expected an integer",
                           raw=_preview(raw), field=key)
    if not lo <= v <= hi:
        raise PayloadError(f"{where}.{key} = {_show(v)} is out of range ({lo}..{hi})", raw=_preview(raw),
                           field=key)
    return v


def parse_energy(response: Mapping[str, Any], *, today: date | None = None) -> list[EnergyDay]:
    """``response.usage[{year, month, data[day-1]}]`` -> one EnergyDay per listed day.

    Ranges: year 2015..(this year + 1), month 1..12, at most the month's days, Wh per source and
    in sum <= 24 h x 7.2 kW, hours <= 24. A day holding an "unknown" marker (e.g. 2**64 - 1) is
    left out, so a stored value for that day is kept; any other value out of range refuses the
    whole reply (``PayloadError``)."""
    if not isinstance(response, Mapping):
        raise PayloadError("energy reply is not an object", raw=_preview(response))
    usage = response.get("usage")
    if not isinstance(usage, list):
        raise PayloadError("energy reply has no 'usage' list", raw=_preview(response))
    year_max = (today or utcnow().date()).year + 1
    days: list[EnergyDay] = []
    for m in usage:
        if not isinstance(m, Mapping) or not isinstance(m.get("data"), list):
            raise PayloadError("energy usage entry lacks a 'data' list", raw=_preview(response))
        year = _int_field(m, "year", "usage", ENERGY_YEAR_MIN, year_max, response)
        month = _int_field(m, "month", "usage", 1, 12, response)
        n_days = calendar.monthrange(year, month)[1]
        if len(m["data"]) > n_days:
            raise PayloadError(f"energy usage {year}-{month:02d} lists {len(m['data'])} days, the month "
                               f"has {n_days}", raw=_preview(response))
        for i, d in enumerate(m["data"]):
            if not isinstance(d, Mapping):
                raise PayloadError("energy usage day is not an object", raw=_preview(response))
            if any(type(v) is int and v in UNKNOWN_MARKERS and not 0 <= v <= hi
                   for v, hi in ((d.get(k), hi) for k, hi in _ENERGY_KEYS)):
                continue  # the device does not know this day
            where = f"usage[{year}-{month:02d}].data[{i}]"
            hp_wh, he_wh, hp_h, he_h = (_int_field(d, k, where, 0, hi, response) for k, hi in _ENERGY_KEYS)
            if hp_wh + he_wh > DAY_WH_MAX:
                raise PayloadError(f"{where}: hpUsage + heUsage = {hp_wh + he_wh} Wh is more than a "
                                   f"day can hold ({DAY_WH_MAX})", raw=_preview(response))
            days.append(EnergyDay(year=year, month=month, day=i + 1, hp_wh=hp_wh, he_wh=he_wh,
                                  hp_h=hp_h, he_h=he_h))
    return days


@dataclass(frozen=True, slots=True)
class Feature:
    """The DID/feature reply: identity, firmware, capability flags and setpoint range."""

    raw: Mapping[str, Any] = field(default_factory=dict)

    def _half_c_f(self, key: str, default: int) -> float:
        v = self.raw.get(key, default)
        return physics.c_to_f((v if type(v) is int and 0 <= v <= 255 else default) / HALF)

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
