-- device_inlet_monthly: one row per device per local month with draws that reached the lower
-- thermistor: the inlet (cold-water) temperature estimated from the device's own draws, by season.
-- The device reports no inlet temperature. A draw pushes inlet water in at the bottom of the tank;
-- after a draw that moved the lower thermistor by at least 10 K (the cold water rose past it), its
-- lowest reading is the inlet temperature plus what mixing and heating added meanwhile (never
-- below the inlet). inlet_c is the lower end of those lowest readings over the month's draws in
-- the draws mart, away from gaps and outside Electric mode: the 6 lowest (at least 3 draws)
-- against their rank, extrapolated to rank 1/2, as int_device_fit does (docs/metrics.md 2.13:
-- still biased high where draws rarely flush the lower quarter). n_draws counts the month's
-- flushing draws.
-- Inputs: draws, int_draw_inlet. Units: degC.
with

draws as (
    select * from draws
),

draw_inlet as (
    select * from int_draw_inlet
),

flushing as (
    select
        d.device,
        date_trunc('month', d.local_day) as month,
        i.lower_min_c,
        row_number() over (partition by d.device, date_trunc('month', d.local_day)
                           order by i.lower_min_c) as rank,
        count(*) over (partition by d.device, date_trunc('month', d.local_day)) as n
    from draws as d
    join draw_inlet as i on d.device = i.device and d.draw_start = i.draw_start
    where not i.at_gap and not i.electric_mode and i.lower_before_c - i.lower_min_c >= 10
)

select
    device,
    cast(month as date) as month,
    case when any_value(n) >= 3
         then regr_intercept(lower_min_c, rank) + 0.5 * regr_slope(lower_min_c, rank) end
        as inlet_c,
    any_value(n) as n_draws
from flushing
where rank <= 6
group by device, month
