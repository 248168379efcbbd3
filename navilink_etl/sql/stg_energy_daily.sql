-- stg_energy_daily: one row per device per day of the device's own history (EMS, docs/protocol.md 6),
-- the latest fetch of each day winning (the current day's figures are partial).
-- Inputs: src_energy. Units: Wh and hours as the device reports them.
with

source as (
    select * from src_energy
),

latest as (
    select *
    from source
    qualify row_number() over (partition by device, day order by fetched_at desc) = 1
)

select
    device,
    day,
    cast(hp_wh as double) as ems_heat_pump_wh,
    cast(he_wh as double) as ems_element_wh,
    cast(hp_h as double) as ems_heat_pump_h,
    cast(he_h as double) as ems_element_h,
    fetched_at,
    source
from latest
