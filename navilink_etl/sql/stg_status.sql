-- stg_status: one row per device per status sample, deduplicated by (device, received_at,
-- content_hash); the wire columns are converted by a block generated from the field table
-- (navilink_etl/fields.py: encodings, units, SI names), which a parity test holds to the parser.
-- Inputs: src_status (raw wire integers, one column per wire key), settings (timezone).
-- Units: degC, W, Wh; on/off flags as booleans (wire 0 = unknown -> NULL); local_day in
-- settings.timezone.
with

source as (
    select * from src_status
),

settings as (
    select timezone from settings
),

converted as (
    select
        d.device,
        d.received_at,
        cast(timezone(s.timezone, d.received_at) as date) as local_day,
        d.source,
        d.kind,
        -- begin: generated from navilink_etl/fields.py (python -m navilink_etl.fields)
        d."command" as command,
        d."operationMode" as operation_mode,
        d."dhwOperationSetting" as dhw_mode,
        d."currentHeatUse" as planned_heat_source,
        d."dhwTemperatureSetting" / 2 as setpoint_c,
        d."dhwTemperature" / 2 as dhw_temperature_c,
        d."heatMinOpTemperature" / 2 as min_setpoint_c,
        d."tankUpperTemperature" / 10 as tank_upper_c,
        d."tankLowerTemperature" / 10 as tank_lower_c,
        (d."tankUpperTemperature" + d."tankLowerTemperature") / 20 as tank_mean_c,
        d."ambientTemperature" / 10 as ambient_c,
        cast(d."currentInstPower" as double) as power_w,
        case d."compUse" when 2 then true when 1 then false end as compressor_on,
        case d."heatUpperUse" when 2 then true when 1 then false end as upper_element_on,
        case d."heatLowerUse" when 2 then true when 1 then false end as lower_element_on,
        case d."dhwUse" when 2 then true when 1 then false end as drawing,
        case d."operationBusy" when 2 then true when 1 then false end as heating_demand,
        case d."evaFanUse" when 2 then true when 1 then false end as fan_on,
        case d."antiLegionellaOperationBusy" when 2 then true when 1 then false end as anti_legionella_active,
        cast(d."totalEnergyCapacity" - d."availableEnergyCapacity" as double) * 4 as stored_wh,
        cast(d."availableEnergyCapacity" as double) * 4 as energy_to_setpoint_wh,
        cast(d."totalEnergyCapacity" as double) * 4 as full_recovery_wh,
        d."dhwChargePer" as dhw_charge_pct,
        d."errorCode" as error_code,
        d."subErrorCode" as sub_error_code,
        d."vacationDaySetting" as vacation_days,
        d."currentStatenum" as state_code,
        -- end: generated
        d.content_hash,
        d.parser_version
    from source as d
    cross join settings as s
),

-- after conversion, so the (rare) duplicates are found on a narrow row; a sort-based window is
-- cheaper here than grouping a million distinct keys
deduplicated as (
    select *
    from converted
    window w as (partition by device order by received_at, content_hash)
    qualify coalesce(
        lag(received_at) over w <> received_at or lag(content_hash) over w <> content_hash, true)
)

select * exclude (content_hash, parser_version) from deduplicated
