-- efficiency_daily: one row per device per local day: seasonal performance (SPF = sum heat /
-- sum electricity, never a mean of cycle COPs), heat-pump share of electricity, element kWh, cost
-- under settings.tariff and savings versus an electric-resistance heater delivering the same heat
-- (1 Wh per Wh, at the day's energy-weighted price); element_cost is the element's part of cost. Heat is taken per heating cycle, on the day
-- the cycle starts; measured_heat_share says how much of it was measured rather than modelled.
-- Inputs: energy_daily, heating_cycles, int_day_energy (cost from int_energy_slots).
-- Units: Wh, kWh, $, 0-1.
with

days as (
    select * from energy_daily
),

cycles as (
    select * from heating_cycles
),

priced_days as (
    select device, local_day, cost, element_cost, priced_wh from int_day_energy
),

heat as (
    select
        device,
        local_day,
        sum(heat_out_wh) as heat_out_wh,
        sum(heat_out_wh) filter (where method = 'measured') as measured_heat_wh,
        sum(electric_wh) as cycle_electric_wh
    from cycles
    group by device, local_day
),

costs as (
    select * from priced_days
)

select
    d.device,
    d.day,
    d.compressor_wh,
    d.element_wh,
    d.standby_wh,
    d.total_wh,
    d.element_wh / 1000.0 as element_kwh,
    d.total_wh / 1000.0 as total_kwh,
    coalesce(h.heat_out_wh, 0) as heat_out_wh,
    coalesce(h.measured_heat_wh, 0) / nullif(h.heat_out_wh, 0) as measured_heat_share,
    coalesce(h.heat_out_wh, 0) / nullif(d.total_wh, 0) as spf,
    d.compressor_wh / nullif(d.compressor_wh + d.element_wh, 0) as heat_pump_share,
    c.cost,
    c.element_cost,
    c.cost / nullif(c.priced_wh / 1000.0, 0) as price_per_kwh,
    coalesce(h.heat_out_wh, 0) / 1000.0 * c.cost / nullif(c.priced_wh / 1000.0, 0)
        as resistance_cost,
    coalesce(h.heat_out_wh, 0) / 1000.0 * c.cost / nullif(c.priced_wh / 1000.0, 0) - c.cost
        as savings,
    d.coverage
from days as d
left join heat as h on h.device = d.device and h.local_day = d.day
left join costs as c on c.device = d.device and c.local_day = d.day
