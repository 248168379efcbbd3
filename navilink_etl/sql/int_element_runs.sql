-- int_element_runs: one row per device per element run: consecutive sample pieces with an element
-- relay on and the same cause (element_use), with the run's electricity, its cost under
-- settings.tariff (the 15-minute prices of int_energy_slots, as int_day_energy) and the state the
-- cause rests on. Cause per piece, first match wins: anti_legionella (the device reports its
-- anti-Legionella cycle busy); freeze_protection (powered off or on Vacation with the tank's
-- coldest sensor below settings.freeze_tank_max_c); mode_electric (DHW mode Electric);
-- cold_lockout (room below the compressor's limit, macro hp_lockout_f); mode_high_demand (High
-- Demand); setpoint_raise (Energy Saver, and the heating episode holding the piece began with a
-- higher setpoint than the sample before it); demand (Energy Saver otherwise); unknown. A heating
-- episode is a run of samples with a heat source on or heating demand (operationBusy).
-- Stored; rows are keyed by the local day the run starts (local_day) and depend on samples up to
-- run_end.
-- Cost: no window over every piece (the piece before's state comes with int_intervals); the
-- windows run on the few pieces that start an episode or have an element on, and the 2 h of draws
-- before each run are summed for the run's start only.
-- Inputs: int_intervals, int_energy_slots, settings. Units: Wh, s, $, degC, min.
with

pieces as (
    select
        device, interval_start, interval_end, duration_s, sample_at, after_gap, element_on,
        heating_on or heating_demand as active, drawing, setpoint_c, anti_legionella_active,
        dhw_mode, operation_mode, ambient_c, tank_upper_c, tank_lower_c, tank_mean_c, element_wh,
        -- the piece before's (int_intervals)
        coalesce(prev_active, false) as prev_active,
        coalesce(prev_setpoint_c, setpoint_c) as prev_setpoint_c,
        -- whether the piece before is an element piece too (a run can continue only then)
        coalesce(prev_element_on, false) as prev_element_on
    from int_intervals
),

slots as (
    select device, slot_start, price_per_kwh from int_energy_slots
),

settings as (
    select timezone, freeze_tank_max_c from settings
),

-- the pieces that start a heating episode, and those with an element on (the only ones kept)
sparse as (
    select * exclude (drawing) from pieces where element_on or (active and not prev_active)
),

episodes as (
    select
        m.*,
        -- the setpoint before and at the start of the heating episode holding the piece
        last_value(case when m.active and not m.prev_active then m.prev_setpoint_c end ignore nulls)
            over w as episode_setpoint_before_c,
        last_value(case when m.active and not m.prev_active then m.setpoint_c end ignore nulls)
            over w as episode_setpoint_c
    from sparse as m
    window w as (partition by m.device order by m.interval_start
                 rows between unbounded preceding and current row)
),

caused as (
    select
        e.*,
        case
            when e.anti_legionella_active then 'anti_legionella'
            when e.dhw_mode in (5, 6) and least(e.tank_upper_c, e.tank_lower_c) < s.freeze_tank_max_c
                then 'freeze_protection'
            when e.dhw_mode = 2 then 'mode_electric'
            when c_to_f(e.ambient_c) < hp_lockout_f() then 'cold_lockout'
            when e.dhw_mode = 4 then 'mode_high_demand'
            when e.dhw_mode = 3 and e.episode_setpoint_c > e.episode_setpoint_before_c
                then 'setpoint_raise'
            when e.dhw_mode = 3 then 'demand'
            else 'unknown'
        end as cause
    from episodes as e
    cross join settings as s
    where e.element_on
),

changes as (
    select
        c.*,
        -- a new run after a piece without an element, at a change of cause, or at a long gap (the
        -- two halves of a sample split at midnight share its flags: only its first counts)
        not c.prev_element_on or c.cause is distinct from lag(c.cause) over w
            or (c.after_gap and c.interval_start = c.sample_at) as new_run
    from caused as c
    window w as (partition by c.device order by c.interval_start)
),

keyed as (
    select
        c.*,
        sum(cast(c.new_run as integer)) over w as run_key,
        c.element_wh / 1000.0 * sl.price_per_kwh as cost
    from changes as c
    left join slots as sl
        on sl.device = c.device and sl.slot_start = time_bucket(interval 15 minutes, c.interval_start)
    window w as (partition by c.device order by c.interval_start
                 rows between unbounded preceding and current row)
),

runs as (
    select
        device,
        min(interval_start) as run_start,
        max(interval_end) as run_end,
        any_value(cause) as cause,
        sum(element_wh) as element_wh,
        sum(duration_s) as element_s,
        sum(cost) as cost,
        sum(element_wh) filter (where cost is not null) as priced_wh,
        arg_min(dhw_mode, interval_start) as dhw_mode,
        arg_min(operation_mode, interval_start) as operation_mode,
        sum(ambient_c * duration_s) / sum(duration_s) as ambient_c,
        sum(tank_mean_c * duration_s) / sum(duration_s) as tank_mean_c,
        arg_min(tank_upper_c, interval_start) as tank_upper_start_c,
        arg_min(tank_lower_c, interval_start) as tank_lower_start_c,
        arg_min(setpoint_c, interval_start) as setpoint_c,
        arg_min(episode_setpoint_before_c, interval_start) as setpoint_before_c
    from keyed
    group by device, run_key
),

draw_pieces as (
    select device, interval_start, duration_s, cast(floor(epoch(interval_start) / 3600) as bigint) as hour
    from pieces
    where drawing
),

run_hours as (
    select
        device, run_start,
        unnest(range(cast(floor((epoch(run_start) - 2 * 3600) / 3600) as bigint),
                     cast(floor(epoch(run_start) / 3600) as bigint) + 1)) as hour
    from runs
),

recent_draws as (
    -- minutes of draws in the 2 h up to the run's start (pieces starting in [start - 2 h, start]),
    -- found by hour (a hash join)
    select
        h.device,
        h.run_start,
        coalesce(sum(d.duration_s), 0) / 60.0 as draw_min_2h
    from run_hours as h
    left join draw_pieces as d
        on d.device = h.device and d.hour = h.hour
        and d.interval_start between h.run_start - interval 2 hours and h.run_start
    group by h.device, h.run_start
)

select
    r.*,
    d.draw_min_2h,
    cast(timezone(s.timezone, r.run_start) as date) as local_day
from runs as r
join recent_draws as d using (device, run_start)
cross join settings as s
