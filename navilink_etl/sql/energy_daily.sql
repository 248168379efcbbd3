-- energy_daily: one row per device per local day (settings.timezone): electricity by source
-- integrated from the samples, coverage, and the device's own EMS figures with the residuals
-- (ours - EMS). coverage = integrated seconds / seconds in the local day (23-25 h across DST);
-- gap_minutes = time between samples beyond the gap cap.
-- Inputs: int_day_energy, heating_cycles, stg_energy_daily, settings. Units: Wh, min, 0-1.
with

integrated as (
    select * from int_day_energy
),

cycles as (
    select * from heating_cycles
),

ems as (
    select * from stg_energy_daily
),

settings as (
    select timezone, poll_interval_s from settings
),

cycle_days as (
    select device, local_day, count(*) as heating_cycles
    from cycles
    group by device, local_day
),

days as (
    select device, local_day from integrated where covered_s is not null
    union
    select device, day as local_day from ems
),

day_lengths as (
    select
        d.device,
        d.local_day,
        epoch(timezone(s.timezone, cast(d.local_day + 1 as timestamp))
              - timezone(s.timezone, cast(d.local_day as timestamp))) as day_s,
        s.poll_interval_s
    from days as d
    cross join settings as s
)

select
    l.device,
    l.local_day as day,
    coalesce(i.compressor_wh, 0) as compressor_wh,
    coalesce(i.element_wh, 0) as element_wh,
    coalesce(i.standby_wh, 0) as standby_wh,
    coalesce(i.total_wh, 0) as total_wh,
    coalesce(i.compressor_s, 0) / 3600.0 as compressor_h,
    coalesce(i.element_s, 0) / 3600.0 as element_h,
    coalesce(c.heating_cycles, 0) as heating_cycles,
    coalesce(i.samples, 0) as samples,
    l.day_s / l.poll_interval_s as expected_samples,
    least(1.0, coalesce(i.covered_s, 0) / l.day_s) as coverage,
    coalesce(i.gap_s, 0) / 60.0 as gap_minutes,
    e.ems_heat_pump_wh,
    e.ems_element_wh,
    e.ems_heat_pump_h,
    e.ems_element_h,
    i.compressor_wh - e.ems_heat_pump_wh as residual_heat_pump_wh,
    i.element_wh - e.ems_element_wh as residual_element_wh
from day_lengths as l
left join integrated as i on i.device = l.device and i.local_day = l.local_day
left join cycle_days as c on c.device = l.device and c.local_day = l.local_day
left join ems as e on e.device = l.device and e.day = l.local_day
