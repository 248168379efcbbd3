-- draws: one row per device per hot-water draw: a run of samples with dhwUse on. The device has
-- no flow meter, so the energy removed is the drop in its stored energy from the sample before
-- the draw to the sample after it, plus heat added meanwhile (element Wh + compressor Wh x fitted
-- COP, method 'modelled' when any heating overlapped, else 'measured'), minus standby loss.
-- Equivalent gallons at the tank-to-inlet rise: energy / (2.444 Wh/(gal*degF) x rise degF), with
-- the inlet from settings.inlet_c and the outlet estimated as the hottest upper-thermistor reading
-- of the last 3 h, less 0.5 K per hour since (the top of a stratified tank stays hot while the
-- thermocline passes the thermistor).
-- Inputs: int_intervals (its draw_seq numbers the draws), int_device_models, settings.
-- Units: s, Wh, gal, degC.
with

pieces as (
    select * from int_intervals
),

models as (
    select * from int_device_models
),

settings as (
    select timezone, inlet_c from settings
),

valued as (
    select
        p.device, p.interval_start, p.interval_end, p.drawing, p.draw_seq, p.stored_wh,
        p.end_stored_wh, p.energy_to_setpoint_wh, p.tank_upper_c, p.heating_on, p.capped,
        p.element_wh + p.compressor_wh * coalesce(m.cop_factor, 1.0)
            * cop_map(p.tank_mean_c, p.ambient_c) as heat_in_wh,
        coalesce(m.ua_w_per_k, 0) * (p.tank_mean_c - p.ambient_c) * p.duration_s / 3600.0
            as loss_wh
    from pieces as p
    left join models as m using (device)
),

marked as (
    select
        v.*,
        lag(v.stored_wh) over w as prev_stored_wh,
        lag(v.energy_to_setpoint_wh) over w as prev_energy_to_setpoint_wh,
        lag(v.interval_start) over w as prev_start,
        lag(v.heat_in_wh) over w as prev_heat_in_wh,
        lag(v.loss_wh) over w as prev_loss_wh,
        lag(v.heating_on) over w as prev_heating_on,
        lag(v.capped) over w as prev_capped,
        -- the top of the tank keeps the hottest water the upper thermistor saw, cooling slowly;
        -- after a large draw the thermocline passes that thermistor while the outlet stays hot
        greatest(v.tank_upper_c, max(v.tank_upper_c + epoch(v.interval_start) / 3600.0 * 0.5)
            over recent - epoch(v.interval_start) / 3600.0 * 0.5) as outlet_estimate_c
    from valued as v
    window
        w as (partition by v.device order by v.interval_start),
        recent as (partition by v.device order by v.interval_start
                   range between interval 3 hours preceding and current row)
),

aggregated as (
    select
        device,
        draw_seq,
        min(interval_start) as draw_start,
        max(interval_end) as draw_end,
        arg_min(prev_start, interval_start) as window_start,
        arg_min(prev_stored_wh, interval_start) as stored_before_wh,
        arg_min(prev_energy_to_setpoint_wh, interval_start) as energy_to_setpoint_before_wh,
        arg_max(end_stored_wh, interval_start) as stored_after_wh,
        arg_min(outlet_estimate_c, interval_start) as outlet_c,
        sum(heat_in_wh) + coalesce(arg_min(prev_heat_in_wh, interval_start), 0) as heat_in_wh,
        sum(loss_wh) + coalesce(arg_min(prev_loss_wh, interval_start), 0) as loss_wh,
        bool_or(heating_on) or coalesce(arg_min(prev_heating_on, interval_start), false)
            as heating_overlap,
        bool_or(capped) or coalesce(arg_min(prev_capped, interval_start), true) as at_gap
    from marked
    where drawing
    group by device, draw_seq
),

energy as (
    select
        a.*,
        a.stored_before_wh - a.stored_after_wh + a.heat_in_wh - a.loss_wh as energy_wh
    from aggregated as a
)

select
    e.device,
    e.draw_seq as draw_id,
    e.draw_start,
    e.draw_end,
    cast(timezone(s.timezone, e.draw_start) as date) as local_day,
    epoch(e.draw_end - e.draw_start) as duration_s,
    e.energy_wh,
    e.energy_wh / nullif(2.444 * (e.outlet_c - s.inlet_c) * 1.8, 0) as equivalent_gal,
    e.outlet_c,
    s.inlet_c,
    e.heating_overlap,
    e.at_gap,
    e.energy_to_setpoint_before_wh = 0 as started_at_setpoint,
    case when e.heating_overlap then 'modelled' else 'measured' end as method
from energy as e
cross join settings as s
