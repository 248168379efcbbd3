-- runouts: one row per device per draw during which the water leaving the tank (hot_water's
-- outlet_c) fell below the delivery temperature: a cold shower. The draw runs from its first
-- sample with dhwUse on to the first sample after it; the run-out starts where the outlet crossed
-- the delivery temperature (interpolated between samples) and lasts to the draw's end.
-- gallons_short: the draw's flow (tank gallons drawn, from the drop in stored heat over the draw
-- at its mean outlet temperature, over its duration) times the run-out's duration: water the
-- household drew below the delivery temperature. Stored; rows keyed by the local day the draw
-- starts (local_day), depending on samples up to draw_end.
-- Inputs: hot_water, settings. Units: s, degC, gal.
with

samples as (
    select * from hot_water
),

settings as (
    select timezone, wh_per_gal_degf, degf_per_k from settings
),

sequenced as (
    select
        x.*,
        lag(x.received_at) over w as prev_at,
        lag(x.outlet_c) over w as prev_outlet_c,
        lag(x.drawing) over w as prev_drawing,
        lead(x.received_at) over w as next_at,
        lead(x.outlet_c) over w as next_outlet_c,
        lead(x.heat_mean_c) over w as next_heat_mean_c,
        lead(x.tank_gal) over w as next_tank_gal
    from samples as x
    window w as (partition by x.device order by x.received_at)
),

numbered as (
    select
        q.*,
        sum(case when q.drawing and not coalesce(q.prev_drawing, false) then 1 else 0 end)
            over (partition by q.device order by q.received_at) as draw_seq
    from sequenced as q
),

crossings as (
    -- per drawing sample: when its outlet, or the next sample's, crossed below delivery
    select
        n.*,
        case
            when n.outlet_c < n.delivery_c and coalesce(n.prev_drawing, false)
                 and n.prev_outlet_c >= n.delivery_c
                then n.prev_at + (n.received_at - n.prev_at)
                     * ((n.prev_outlet_c - n.delivery_c) / (n.prev_outlet_c - n.outlet_c))
            when n.outlet_c < n.delivery_c then n.received_at
            when n.next_outlet_c < n.delivery_c
                then n.received_at + (n.next_at - n.received_at)
                     * ((n.outlet_c - n.delivery_c) / (n.outlet_c - n.next_outlet_c))
        end as below_at
    from numbered as n
    where n.drawing
),

draws as (
    select
        device,
        draw_seq,
        min(received_at) as draw_start,
        arg_max(coalesce(next_at, received_at), received_at) as draw_end,
        min(below_at) as runout_start,
        min(least(outlet_c, coalesce(next_outlet_c, outlet_c))) as outlet_min_c,
        any_value(delivery_c) as delivery_c,
        any_value(inlet_c) as inlet_c,
        avg(outlet_c) as outlet_mean_c,
        arg_min(heat_mean_c * tank_gal, received_at) as heat_before_galk,
        arg_max(coalesce(next_heat_mean_c * next_tank_gal, heat_mean_c * tank_gal), received_at)
            as heat_after_galk
    from crossings
    group by device, draw_seq
)

select
    d.device,
    d.draw_start as start,
    d.draw_end,
    d.runout_start,
    epoch(d.draw_end - d.runout_start) as duration_s,
    d.outlet_min_c,
    d.delivery_c,
    greatest(d.heat_before_galk - d.heat_after_galk, 0)
        / nullif(d.outlet_mean_c - d.inlet_c, 0)
        * epoch(d.draw_end - d.runout_start) / nullif(epoch(d.draw_end - d.draw_start), 0)
        as gallons_short,
    cast(timezone(s.timezone, d.draw_start) as date) as local_day
from draws as d
cross join settings as s
where d.runout_start is not null and d.runout_start < d.draw_end
