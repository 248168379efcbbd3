-- efficiency_monthly: one row per device per local calendar month: efficiency_daily summed
-- (SPF = sum heat / sum electricity; coverage = mean daily coverage over the month's days).
-- Inputs: efficiency_daily. Units: Wh, kWh, $, 0-1.
with

days as (
    select * from efficiency_daily
)

select
    device,
    cast(date_trunc('month', day) as date) as month,
    count(*) as days,
    sum(compressor_wh) as compressor_wh,
    sum(element_wh) as element_wh,
    sum(standby_wh) as standby_wh,
    sum(total_wh) as total_wh,
    sum(element_wh) / 1000.0 as element_kwh,
    sum(total_wh) / 1000.0 as total_kwh,
    sum(heat_out_wh) as heat_out_wh,
    sum(heat_out_wh * coalesce(measured_heat_share, 0)) / nullif(sum(heat_out_wh), 0)
        as measured_heat_share,
    sum(heat_out_wh) / nullif(sum(total_wh), 0) as spf,
    sum(compressor_wh) / nullif(sum(compressor_wh) + sum(element_wh), 0) as heat_pump_share,
    sum(cost) as cost,
    sum(element_cost) as element_cost,
    sum(resistance_cost) as resistance_cost,
    sum(savings) as savings,
    sum(coverage) / (extract(day from last_day(min(day)))) as coverage
from days
group by device, month
