-- runouts: one row per device per draw during which the water leaving the tank fell below the
-- delivery temperature (settings.delivery_c): a cold shower (docs/metrics.md 7).
-- A draw pushes the water column up (plug flow), so the outlet sees what the upper thermistor saw
-- (1 - upper_sensor_height) tank volumes of drawn water earlier. The water drawn is counted from
-- the heat leaving the tank (the drop in stored heat plus the heat put in meanwhile, int_hot_water's
-- heating_w) at the hottest recent temperature; the run-out starts where that volume, since the
-- upper thermistor fell below the delivery temperature, reaches the water above it (when it read
-- below before the draw: int_hot_water's usable water at the draw's start), and lasts to the draw's
-- end (the first sample without dhwUse). gallons_short: the draw's mean flow before the run-out
-- times its duration, the tank water drawn below the delivery temperature.
-- Stored; rows keyed by the local day the draw starts (local_day), depending on samples up to
-- draw_end.
-- Inputs: int_hot_water, settings. Units: s, degC, gal (tank water, not mixed).
with

samples as (
    select * from int_hot_water
),

settings as (
    select timezone, wh_per_gal_degf * degf_per_k as wh_per_gal_k, upper_sensor_height as z_up
    from settings
),

sequenced as (
    -- one ordered pass over every sample (narrow): its neighbours' values
    select
        x.device, x.received_at, x.drawing, x.tank_upper_c, x.delivery_c, x.inlet_c, x.tank_gal,
        x.hottest_c, x.gallons_available,
        x.heat_mean_c * x.tank_gal as heat_galk,
        x.heating_w,
        lag(x.drawing) over w as prev_drawing,
        lead(x.received_at) over w as next_at,
        lead(x.heat_mean_c * x.tank_gal) over w as next_heat_galk,
        lead(x.tank_upper_c) over w as next_upper_c,
        lag(x.received_at) over w as prev_at,
        lag(x.heat_mean_c * x.tank_gal) over w as prev_heat_galk,
        lag(x.tank_upper_c) over w as prev_upper_c,
        lag(x.hottest_c) over w as prev_hottest_c,
        lag(x.gallons_available) over w as prev_gallons_available
    from samples as x
    window w as (partition by x.device order by x.received_at)
),

numbered as (
    -- draws numbered over the drawing samples only (the others start none)
    select
        q.*,
        sum(case when not coalesce(q.prev_drawing, false) then 1 else 0 end)
            over (partition by q.device order by q.received_at) as draw_seq
    from sequenced as q
    where q.drawing
),

draw_samples as (
    select * from numbered where next_at is not null
),

anchors as (
    -- per draw: the sample before it (volume 0 there), the hot temperature, the threshold
    select
        device, draw_seq,
        arg_min(prev_at, received_at) as anchor_at,
        arg_min(coalesce(prev_hottest_c, hottest_c), received_at) as hot_c,
        arg_min(coalesce(prev_upper_c, tank_upper_c), received_at) as upper_before_c,
        arg_min(coalesce(prev_gallons_available, gallons_available), received_at)
            as usable_before_gal,
        any_value(delivery_c) as delivery_c,
        any_value(inlet_c) as inlet_c,
        any_value(tank_gal) as tank_gal,
        min(received_at) as draw_start,
        max(next_at) as draw_end
    from draw_samples
    group by device, draw_seq
),

steps as (
    -- tank gallons drawn from the anchor to each drawing sample's next sample
    select
        d.device, d.draw_seq, d.received_at, d.next_at, d.tank_upper_c, d.next_upper_c,
        a.hot_c, a.delivery_c,
        sum(greatest(
                d.heat_galk - d.next_heat_galk
                + d.heating_w * epoch(d.next_at - d.received_at) / 3600.0 / s.wh_per_gal_k, 0)
            + case when d.prev_drawing then 0
                   else greatest(coalesce(d.prev_heat_galk - d.heat_galk, 0), 0) end)
            over (partition by d.device, d.draw_seq order by d.received_at)
            / nullif(a.hot_c - a.inlet_c, 0) as gal_at_next
    from draw_samples as d
    join anchors as a using (device, draw_seq)
    cross join settings as s
),

with_start as (
    select
        s.*,
        coalesce(lag(s.gal_at_next) over (partition by s.device, s.draw_seq
                                          order by s.received_at), 0) as gal_at_sample
    from steps as s
),

upper_crossing as (
    -- where the upper thermistor fell below the delivery temperature: drawn volume then
    select
        device, draw_seq,
        min(gal_at_sample + (gal_at_next - gal_at_sample)
            * (tank_upper_c - delivery_c) / nullif(tank_upper_c - next_upper_c, 0)) as gal_at_upper
    from with_start
    where tank_upper_c >= delivery_c and next_upper_c < delivery_c
    group by device, draw_seq
),

thresholds as (
    select
        a.*,
        case when a.upper_before_c < a.delivery_c
                 then a.usable_before_gal * (a.delivery_c - a.inlet_c)
                      / nullif(a.hot_c - a.inlet_c, 0)
             else u.gal_at_upper + (1 - s.z_up) * a.tank_gal end as threshold_gal
    from anchors as a
    left join upper_crossing as u using (device, draw_seq)
    cross join settings as s
),

crossed as (
    select
        t.device, t.draw_seq,
        min(w.received_at + (w.next_at - w.received_at)
            * ((t.threshold_gal - w.gal_at_sample)
               / nullif(w.gal_at_next - w.gal_at_sample, 0))) as runout_start
    from thresholds as t
    join with_start as w using (device, draw_seq)
    where w.gal_at_sample <= t.threshold_gal and w.gal_at_next > t.threshold_gal
    group by t.device, t.draw_seq
)

select
    t.device,
    t.draw_start as start,
    t.draw_end,
    c.runout_start,
    epoch(t.draw_end - c.runout_start) as duration_s,
    t.delivery_c,
    t.threshold_gal / nullif(epoch(c.runout_start - t.anchor_at), 0)
        * epoch(t.draw_end - c.runout_start) as gallons_short,
    cast(timezone(s.timezone, t.draw_start) as date) as local_day
from thresholds as t
join crossed as c using (device, draw_seq)
cross join settings as s
where c.runout_start < t.draw_end
