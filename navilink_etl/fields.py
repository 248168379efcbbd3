"""The status wire field table, the one home of each key's encoding, valid raw range, unit and SI
name: ``status.DeviceStatus`` decodes with it and the ``stg_status`` view's columns are generated
from it (``python -m navilink_etl.fields`` rewrites them)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

WH_PER_COUNT = 4  # totalEnergyCapacity / availableEnergyCapacity count 4 Wh each
HALF = 2  # half-degC: degC = raw / 2
DECI = 10  # deci-units: raw / 10


class Encoding(StrEnum):
    RAW = "raw"  # an integer as sent: codes, enums, bitfields, counters, %, hours, days, rpm
    WATTS = "watts"  # integer W
    HALF_C = "half_c"  # degC = raw / 2
    DECI_C = "deci_c"  # degC = raw / 10
    DECI_K = "deci_k"  # K (a temperature difference) = raw / 10
    DECI = "deci"  # raw / 10 (flow rates)
    FLAG = "flag"  # 1 off, 2 on; 0 (or any other value) unknown
    WH4 = "wh4"  # counts of 4 Wh


def _flag(raw: int) -> bool | None:
    return True if raw == 2 else False if raw == 1 else None


# raw int (never None) -> decoded value
DECODE: dict[Encoding, Callable[[int], Any]] = {
    Encoding.RAW: int,
    Encoding.WATTS: int,
    Encoding.HALF_C: lambda r: r / HALF,
    Encoding.DECI_C: lambda r: r / DECI,
    Encoding.DECI_K: lambda r: r / DECI,
    Encoding.DECI: lambda r: r / DECI,
    Encoding.FLAG: _flag,
    Encoding.WH4: lambda r: r * float(WH_PER_COUNT),
}

# The same in DuckDB SQL ({} is the raw BIGINT column; NULL stays NULL; integer / integer is DOUBLE).
SQL: dict[Encoding, str] = {
    Encoding.RAW: "{}",
    Encoding.WATTS: "cast({} as double)",
    Encoding.HALF_C: f"{{}} / {HALF}",
    Encoding.DECI_C: f"{{}} / {DECI}",
    Encoding.DECI_K: f"{{}} / {DECI}",
    Encoding.DECI: f"{{}} / {DECI}",
    Encoding.FLAG: "case {} when 2 then true when 1 then false end",
    Encoding.WH4: f"cast({{}} as double) * {WH_PER_COUNT}",
}

# Raw ranges, from the wire type where physics gives nothing tighter. Flags and enums accept any
# byte (an unseen code decodes to unknown, its raw value is stored): only numbers no device can
# send are refused.
U8 = (0, 2**8 - 1)
U16 = (0, 2**16 - 1)
U32 = (0, 2**32 - 1)
HALF_C_RANGE = (-120, 240)  # -60..120 degC: air outdoors to water at the relief valve, with margin
DECI_C_RANGE = (-600, 2000)  # -60..200 degC: the hottest is compressor discharge (~70 C seen)
DECI_K_RANGE = (-1000, 1000)  # +-100 K differences (superheat, hysteresis)
PERCENT = (0, 100)
POWER_RANGE = (0, 15_000)  # W: twice what a 30 A, 240 V circuit delivers (7.2 kW)
ENERGY_RANGE = (0, 20_000)  # 4 Wh counts = 80 kWh, ~7x a full recovery of an 80-gal tank
LIFETIME_H = (0, 1_000_000)  # hours: over a century of running
DAYS = U8
FLOW_RANGE = U16


@dataclass(frozen=True, slots=True)
class Field:
    """One status key: how it is encoded, what the device can send, what it means."""

    key: str
    encoding: Encoding
    lo: int
    hi: int
    unit: str = ""  # of the decoded value
    si: str | None = None  # DeviceStatus attribute and stg_status column, where it has one
    firmware: str = "2025-09"  # "2025-09" (87 keys), "2025-10" (added), "optional" (never seen)
    required: bool = False  # a snapshot without it is useless for analytics


def _f(key: str, enc: Encoding, rng: tuple[int, int], unit: str = "", si: str | None = None,
       *, firmware: str = "2025-09", required: bool = False) -> Field:
    return Field(key, enc, rng[0], rng[1], unit, si, firmware, required)


E = Encoding
# In the September-2025 firmware's wire order (the ``heLowerOnTDiffempSetting`` typo is the wire's).
FIELDS: tuple[Field, ...] = (
    _f("command", E.RAW, U32, "code", "command", required=True),
    _f("outsideTemperature", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("specialFunctionStatus", E.RAW, U16),
    _f("didReload", E.FLAG, U8),
    _f("errorCode", E.RAW, U16, "code", "error_code"),
    _f("subErrorCode", E.RAW, U16, "code", "sub_error_code"),
    _f("operationMode", E.RAW, U8, "bits", "operation_mode", required=True),
    _f("operationBusy", E.FLAG, U8, "", "heating_demand"),
    _f("freezeProtectionUse", E.FLAG, U8),
    _f("dhwUse", E.FLAG, U8, "", "drawing"),
    _f("dhwUseSustained", E.FLAG, U8),
    _f("dhwTemperature", E.HALF_C, HALF_C_RANGE, "degC", "dhw_temperature_c", required=True),
    _f("dhwTemperatureSetting", E.HALF_C, HALF_C_RANGE, "degC", "setpoint_c", required=True),
    _f("programReservationUse", E.FLAG, U8),
    _f("smartDiagnostic", E.RAW, U16, "code"),
    _f("faultStatus1", E.RAW, U32, "bits"),
    _f("faultStatus2", E.RAW, U32, "bits"),
    _f("wifiRssi", E.RAW, (-128, 255)),  # positive on the wire; its unit is unknown
    _f("ecoUse", E.FLAG, U8),
    _f("dhwTargetTemperatureSetting", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("tankUpperTemperature", E.DECI_C, DECI_C_RANGE, "degC", "tank_upper_c", required=True),
    _f("tankLowerTemperature", E.DECI_C, DECI_C_RANGE, "degC", "tank_lower_c", required=True),
    _f("dischargeTemperature", E.DECI_C, DECI_C_RANGE, "degC", "discharge_c"),
    _f("suctionTemperature", E.DECI_C, DECI_C_RANGE, "degC", "suction_c"),
    _f("evaporatorTemperature", E.DECI_C, DECI_C_RANGE, "degC", "evaporator_c"),
    _f("ambientTemperature", E.DECI_C, DECI_C_RANGE, "degC", "ambient_c"),
    _f("targetSuperHeat", E.DECI_K, DECI_K_RANGE, "K", "target_superheat_k"),
    _f("compUse", E.FLAG, U8, "", "compressor_on", required=True),
    _f("eevUse", E.FLAG, U8),
    _f("evaFanUse", E.FLAG, U8, "", "fan_on"),
    _f("currentInstPower", E.WATTS, POWER_RANGE, "W", "power_w", required=True),
    _f("shutOffValveUse", E.FLAG, U8),
    _f("conOvrSensorUse", E.FLAG, U8),
    _f("wtrOvrSensorUse", E.FLAG, U8),
    _f("dhwChargePer", E.RAW, PERCENT, "%", "dhw_charge_pct"),
    _f("drEventStatus", E.RAW, U8, "code"),
    _f("vacationDaySetting", E.RAW, DAYS, "d", "vacation_days"),
    _f("vacationDayElapsed", E.RAW, DAYS, "d"),
    _f("freezeProtectionTemperature", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("antiLegionellaUse", E.FLAG, U8),
    _f("antiLegionellaPeriod", E.RAW, DAYS, "d"),
    _f("antiLegionellaOperationBusy", E.FLAG, U8, "", "anti_legionella_active"),
    _f("programReservationType", E.RAW, U8, "code"),
    _f("dhwOperationSetting", E.RAW, U8, "code", "dhw_mode", required=True),
    _f("temperatureType", E.RAW, U8, "code"),
    _f("tempFormulaType", E.RAW, U8, "code"),
    _f("errorBuzzerUse", E.FLAG, U8),
    _f("currentHeatUse", E.RAW, U8, "code", "planned_heat_source"),
    _f("currentInletTemperature", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("currentStatenum", E.RAW, U16, "code", "state_code"),
    _f("targetFanRpm", E.RAW, U16, "rpm"),
    _f("currentFanRpm", E.RAW, U16, "rpm"),
    _f("fanPwm", E.RAW, U16),
    _f("dhwTemperature2", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("currentDhwFlowRate", E.DECI, FLOW_RANGE, "L/min"),
    _f("mixingRate", E.RAW, PERCENT, "%"),
    _f("eevStep", E.RAW, U16, "steps"),
    _f("currentSuperHeat", E.DECI_K, DECI_K_RANGE, "K", "current_superheat_k"),
    _f("heatUpperUse", E.FLAG, U8, "", "upper_element_on", required=True),
    _f("heatLowerUse", E.FLAG, U8, "", "lower_element_on", required=True),
    _f("scaldUse", E.FLAG, U8),
    _f("airFilterAlarmUse", E.FLAG, U8),
    _f("airFilterAlarmPeriod", E.RAW, U16, "h"),
    _f("airFilterAlarmElapsed", E.RAW, LIFETIME_H, "h"),
    _f("cumulatedOpTimeEvaFan", E.RAW, LIFETIME_H, "h"),
    _f("cumulatedDhwFlowRate", E.RAW, (0, 2**31 - 1), "L"),
    _f("touStatus", E.RAW, U8, "code"),  # not a 1/2 flag: 1 and 3 were seen
    _f("hpUpperOnTempSetting", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("hpUpperOffTempSetting", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("hpLowerOnTempSetting", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("hpLowerOffTempSetting", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("heUpperOnTempSetting", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("heUpperOffTempSetting", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("heLowerOnTempSetting", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("heLowerOffTempSetting", E.HALF_C, HALF_C_RANGE, "degC"),
    _f("hpUpperOnDiffTempSetting", E.DECI_K, DECI_K_RANGE, "K"),
    _f("hpUpperOffDiffTempSetting", E.DECI_K, DECI_K_RANGE, "K"),
    _f("hpLowerOnDiffTempSetting", E.DECI_K, DECI_K_RANGE, "K"),
    _f("hpLowerOffDiffTempSetting", E.DECI_K, DECI_K_RANGE, "K"),
    _f("heUpperOnDiffTempSetting", E.DECI_K, DECI_K_RANGE, "K"),
    _f("heUpperOffDiffTempSetting", E.DECI_K, DECI_K_RANGE, "K"),
    _f("heLowerOnTDiffempSetting", E.DECI_K, DECI_K_RANGE, "K"),
    _f("heLowerOffDiffTempSetting", E.DECI_K, DECI_K_RANGE, "K"),
    _f("drOverrideStatus", E.RAW, U8, "h"),
    _f("touOverrideStatus", E.RAW, U8, "code"),  # 1 override active, 2 normal: not a flag
    _f("totalEnergyCapacity", E.WH4, ENERGY_RANGE, "Wh", "full_recovery_wh"),
    _f("availableEnergyCapacity", E.WH4, ENERGY_RANGE, "Wh", "energy_to_setpoint_wh"),
    # added by the controller firmware seen from 2025-10 on
    _f("heatMinOpTemperature", E.HALF_C, HALF_C_RANGE, "degC", "min_setpoint_c", firmware="2025-10"),
    _f("recircOperationMode", E.RAW, U8, "code", firmware="2025-10"),
    _f("recircPumpOperationStatus", E.RAW, U8, "code", firmware="2025-10"),
    _f("recircHotBtnReady", E.RAW, U8, "code", firmware="2025-10"),
    _f("recircOperationReason", E.RAW, U8, "code", firmware="2025-10"),
    _f("recircErrorStatus", E.RAW, U16, "code", firmware="2025-10"),
    _f("recircOperationBusy", E.FLAG, U8, firmware="2025-10"),
    _f("recircReservationUse", E.FLAG, U8, firmware="2025-10"),
    _f("recircTempSetting", E.HALF_C, HALF_C_RANGE, "degC", firmware="2025-10"),
    _f("recircTemperature", E.HALF_C, HALF_C_RANGE, "degC", firmware="2025-10"),
    _f("recircFaucetTemperature", E.HALF_C, HALF_C_RANGE, "degC", firmware="2025-10"),
    _f("recircDhwFlowRate", E.DECI, FLOW_RANGE, "L/min", firmware="2025-10"),
    # in the reference client's model with defaults; never seen in a status payload
    _f("dhwOperationBusy", E.FLAG, U8, firmware="optional"),
    _f("freezeProtectionTempMin", E.HALF_C, HALF_C_RANGE, "degC", firmware="optional"),
    _f("freezeProtectionTempMax", E.HALF_C, HALF_C_RANGE, "degC", firmware="optional"),
)
del E

BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}
BY_SI: dict[str, Field] = {f.si: f for f in FIELDS if f.si}


@dataclass(frozen=True, slots=True)
class Derived:
    """An SI value computed from two fields (the same arithmetic in Python and SQL)."""

    si: str
    unit: str
    keys: tuple[str, str]
    py: Callable[[int, int], float]
    sql: str  # {0}, {1}: the raw columns of ``keys``


DERIVED: tuple[Derived, ...] = (
    Derived("tank_mean_c", "degC", ("tankUpperTemperature", "tankLowerTemperature"),
            lambda u, lo: (u + lo) / (2 * DECI), f"({{0}} + {{1}}) / {2 * DECI}"),
    # (total - available) x 4 Wh: stored energy above the device's reference temperature
    Derived("stored_wh", "Wh", ("totalEnergyCapacity", "availableEnergyCapacity"),
            lambda t, a: (t - a) * float(WH_PER_COUNT), f"cast({{0}} - {{1}} as double) * {WH_PER_COUNT}"),
)
DERIVED_BY_SI: dict[str, Derived] = {d.si: d for d in DERIVED}

# The stg_status columns decoded from the wire, in the view's order.
STG_STATUS_COLUMNS: tuple[str, ...] = (
    "command", "operation_mode", "dhw_mode", "planned_heat_source", "setpoint_c",
    "dhw_temperature_c", "min_setpoint_c", "tank_upper_c", "tank_lower_c", "tank_mean_c",
    "ambient_c", "power_w", "compressor_on", "upper_element_on", "lower_element_on", "drawing",
    "heating_demand", "fan_on", "anti_legionella_active", "stored_wh", "energy_to_setpoint_wh",
    "full_recovery_wh", "dhw_charge_pct", "error_code", "sub_error_code", "vacation_days",
    "state_code",
)  # fmt: skip


def decode(key: str, raw: int | None) -> Any:
    """The decoded value of one raw wire value (None stays None)."""
    return None if raw is None else DECODE[BY_KEY[key].encoding](raw)


# decoded value -> raw int (the simulator's and the CSV importer's direction); None stays None
_ENCODE: dict[Encoding, Callable[[Any], int]] = {
    Encoding.RAW: int,
    Encoding.WATTS: round,
    Encoding.HALF_C: lambda v: round(v * HALF),
    Encoding.DECI_C: lambda v: round(v * DECI),
    Encoding.DECI_K: lambda v: round(v * DECI),
    Encoding.DECI: lambda v: round(v * DECI),
    Encoding.FLAG: lambda v: 2 if v else 1,
    Encoding.WH4: lambda v: round(v / WH_PER_COUNT),
}


def encode(key: str, value: Any) -> int | None:
    """The raw wire value of a decoded one (rounded to the wire's step; a flag's None is 0)."""
    enc = BY_KEY[key].encoding
    if value is None:
        return 0 if enc is Encoding.FLAG else None
    return _ENCODE[enc](value)


def sql_expr(si: str, table: str = "d") -> str:
    """The SQL expression of SI column ``si`` over the raw columns of ``table``."""
    if si in DERIVED_BY_SI:
        d = DERIVED_BY_SI[si]
        return d.sql.format(*(f'{table}."{k}"' for k in d.keys))
    f = BY_SI[si]
    return SQL[f.encoding].format(f'{table}."{f.key}"')


# --- stg_status.sql: the generated block ---------------------------------------------------------

BEGIN_MARK = "-- begin: generated from navilink_etl/fields.py (python -m navilink_etl.fields)"
END_MARK = "-- end: generated"


def stg_status_block(indent: str = "        ") -> str:
    lines = [f"{indent}{BEGIN_MARK}"]
    lines += [f"{indent}{sql_expr(si)} as {si}," for si in STG_STATUS_COLUMNS]
    lines.append(f"{indent}{END_MARK}")
    return "\n".join(lines)


def render_stg_status(sql: str) -> str:
    """``sql`` (stg_status.sql) with its generated block replaced by the current one."""
    start = sql.index(BEGIN_MARK)
    start = sql.rindex("\n", 0, start) + 1
    end = sql.index(END_MARK, start) + len(END_MARK)
    indent = sql[start:sql.index(BEGIN_MARK)]
    return sql[:start] + stg_status_block(indent) + sql[end:]


def stg_status_path() -> Path:
    return Path(__file__).parent / "sql" / "stg_status.sql"


if __name__ == "__main__":  # pragma: no cover - a developer tool
    path = stg_status_path()
    old = path.read_text(encoding="utf-8")
    new = render_stg_status(old)
    if new != old:
        path.write_text(new, encoding="utf-8")
    print(f"{path}: {'rewritten' if new != old else 'up to date'}", file=sys.stderr)
