-- int_energy_slots: one row per device per 15-minute slot with electricity by source and the
-- price in force at the slot's start under settings.tariff: 'flat' (settings.price_per_kwh),
-- 'tou' (tariff_tou: the device's own plan, else a plan for every device; season bit m-1 for
-- month m, week bits Sunday 128 ... Saturday 2, minutes in local time), 'csv' (tariff_csv: each
-- price holds until the next row). A slot no plan covers has a NULL price.
-- element_cost prices the slot's element Wh alone.
-- Inputs: int_intervals, settings, tariff_tou, tariff_csv. Units: Wh, $/kWh, $.
with

pieces as (
    select * from int_intervals
),

settings as (
    select timezone, tariff, price_per_kwh from settings
),

tou as (
    select * from tariff_tou
),

price_rows as (
    select * from tariff_csv
),

slots as (
    select
        device,
        time_bucket(interval 15 minutes, interval_start) as slot_start,
        any_value(local_day) as local_day,
        sum(compressor_wh) as compressor_wh,
        sum(element_wh) as element_wh,
        sum(standby_wh) as standby_wh,
        sum(total_wh) as total_wh
    from pieces
    group by device, slot_start
),

local_slots as materialized (
    select sl.*, timezone(s.timezone, sl.slot_start) as local_start
    from slots as sl
    cross join settings as s
),

tou_prices as (
    select
        sl.device,
        sl.slot_start,
        arg_max(t.price_per_kwh, case when t.device is null then 0 else 1 end) as price_per_kwh
    from local_slots as sl
    join tou as t
        on (t.device = sl.device or t.device is null)
        and (t.season_mask & (1 << (month(sl.local_start) - 1))) <> 0
        and (t.week_mask & (1 << (7 - dayofweek(sl.local_start)))) <> 0
        and hour(sl.local_start) * 60 + minute(sl.local_start) >= t.start_minute
        and hour(sl.local_start) * 60 + minute(sl.local_start) < t.end_minute
    group by sl.device, sl.slot_start
),

csv_prices as (
    select sl.device, sl.slot_start, p.price_per_kwh
    from local_slots as sl
    asof join price_rows as p on sl.slot_start >= p.start_at
),

priced as (
    select
        sl.*,
        case s.tariff
            when 'flat' then s.price_per_kwh
            when 'tou' then tp.price_per_kwh
            when 'csv' then cp.price_per_kwh
        end as price_per_kwh
    from local_slots as sl
    cross join settings as s
    left join tou_prices as tp on tp.device = sl.device and tp.slot_start = sl.slot_start
    left join csv_prices as cp on cp.device = sl.device and cp.slot_start = sl.slot_start
)

select
    device,
    slot_start,
    local_start,
    local_day,
    compressor_wh,
    element_wh,
    standby_wh,
    total_wh,
    price_per_kwh,
    total_wh / 1000.0 * price_per_kwh as cost,
    element_wh / 1000.0 * price_per_kwh as element_cost
from priced
