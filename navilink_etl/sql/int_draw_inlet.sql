-- int_draw_inlet: one row per device per hot-water draw (a run of samples with dhwUse on, as in
-- int_draw_base) with the lower thermistor's lowest reading during the draw or at the sample right
-- after it (lower_min_c). A draw pushes inlet water in at the bottom, so after a large draw the
-- lower thermistor (about a quarter up the tank) reads close to the inlet temperature, never below
-- it; lower_before_c is its reading at the sample before the draw (the drop says how far the cold
-- water rose). electric_mode: the draw ran in Electric mode, where the lower element at the very
-- bottom heats the incoming water (the reading then says little about the inlet). device_inlet_monthly and device_model estimate the inlet from these. Stored; rows
-- are keyed by the local day the draw starts (local_day) and depend on samples up to draw_end.
-- Inputs: int_intervals, settings. Units: s, degC.
with

pieces as (
    select * from int_intervals
),

settings as (
    select timezone from settings
),

neighbours as (
    select
        device, interval_start, interval_end, drawing, draw_seq, tank_lower_c, capped, dhw_mode,
        lag(tank_lower_c) over w as prev_lower_c,
        -- the next sample's reading, when it follows without a gap
        case when lead(interval_start) over w = interval_end
             then lead(tank_lower_c) over w end as next_lower_c
    from pieces
    window w as (partition by device order by interval_start)
),

aggregated as (
    select
        device,
        draw_seq,
        min(interval_start) as draw_start,
        max(interval_end) as draw_end,
        arg_min(prev_lower_c, interval_start) as lower_before_c,
        least(min(tank_lower_c), arg_max(next_lower_c, interval_start)) as lower_min_c,
        bool_or(capped) as at_gap,
        coalesce(bool_or(dhw_mode_name(dhw_mode) = 'electric'), false) as electric_mode
    from neighbours
    where drawing
    group by device, draw_seq
)

select
    a.device,
    a.draw_start,
    a.draw_end,
    cast(timezone(s.timezone, a.draw_start) as date) as local_day,
    epoch(a.draw_end - a.draw_start) as duration_s,
    a.lower_before_c,
    a.lower_min_c,
    a.at_gap,
    a.electric_mode
from aggregated as a
cross join settings as s
