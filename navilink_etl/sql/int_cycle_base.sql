-- int_cycle_base: one row per device per heating cycle: electrical energy by source, tank state at
-- start and end, and what the heat delivered needs, before any device-level fit (int_cycles adds
-- the UA). Stored; rows are keyed by the local day the cycle starts (local_day) and depend on
-- samples up to context_end (the sample that settles its end state; infinity while none has).
-- At the end the tank often sits above its setpoint, where the device's stored-energy figure is
-- clipped; then the end state is taken at the first later sample with a valid figure
-- (settled_stored_wh), provided only standby happened in between (settled_quiet), and the standby
-- loss meanwhile (UA x settled_excess_kh) is added back in int_cycles.
-- Inputs: int_cycle_pieces, int_intervals, settings. Units: s, Wh, degC, K*h.
with

pieces as (
    select * from int_cycle_pieces
),

samples as materialized (
    select device, sample_at, stored_wh, energy_to_setpoint_wh, disturbed_before,
        excess_kh_before
    from int_intervals
),

unclipped as (
    select * from samples where energy_to_setpoint_wh > 0
),

settings as (
    select timezone from settings
),

aggregated as (
    select
        device,
        cycle_seq,
        any_value(cycle_start) as cycle_start,
        any_value(cycle_end) as cycle_end,
        sum(duration_s) filter (where compressor_on) as compressor_s,
        sum(duration_s) filter (where element_on) as element_s,
        sum(compressor_wh) as compressor_wh,
        sum(element_wh) as element_wh,
        sum(standby_wh) as standby_wh,
        -- dhwUse, or stored energy falling while heating: a draw between two polls
        bool_or(drawing or end_stored_wh < stored_wh - 8) as draw_overlap,
        bool_or(anti_legionella_active) as anti_legionella,
        sum(ambient_c * duration_s) / sum(duration_s) as ambient_c,
        sum(tank_mean_c * duration_s) / sum(duration_s) as tank_avg_c,
        sum(tank_mean_c * duration_s) filter (where compressor_on)
            / sum(duration_s) filter (where compressor_on) as tank_hp_c,
        sum((tank_mean_c - ambient_c) * duration_s) / 3600.0 as excess_kh,
        arg_min(after_gap, interval_start) as starts_after_gap,
        arg_max(long_gap, interval_start) as ends_at_gap,
        arg_min(tank_mean_c, interval_start) as tank_mean_start_c,
        arg_min(tank_upper_c, interval_start) as tank_upper_start_c,
        arg_min(tank_lower_c, interval_start) as tank_lower_start_c,
        arg_min(stored_wh, interval_start) as stored_start_wh,
        arg_min(energy_to_setpoint_wh, interval_start) as energy_to_setpoint_start_wh,
        arg_min(setpoint_c, interval_start) as setpoint_start_c,
        arg_min(dhw_mode, interval_start) as dhw_mode,
        arg_min(last_draw_end, interval_start) as last_draw_end,
        arg_max(end_tank_mean_c, interval_start) as tank_mean_end_c,
        arg_max(end_stored_wh, interval_start) as end_sample_stored_wh,
        arg_max(end_energy_to_setpoint_wh, interval_start) as energy_to_setpoint_end_wh,
        arg_max(end_setpoint_c, interval_start) as setpoint_end_c
    from pieces
    group by device, cycle_seq
),

-- the sample ending the cycle, and the first later one whose stored-energy figure is not clipped
settled as (
    select
        a.*,
        u.stored_wh as settled_stored_wh,
        u.disturbed_before = e.disturbed_before as settled_quiet,
        u.excess_kh_before - e.excess_kh_before as settled_excess_kh,
        greatest(a.cycle_end, coalesce(u.sample_at, 'infinity'::timestamptz)) as context_end
    from aggregated as a
    asof left join samples as e
        on a.device = e.device and a.cycle_end <= e.sample_at
    asof left join unclipped as u
        on a.device = u.device and a.cycle_end <= u.sample_at
)

select
    a.* exclude (cycle_seq),
    cast(timezone(s.timezone, a.cycle_start) as date) as local_day
from settled as a
cross join settings as s
