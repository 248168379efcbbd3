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
-- Inputs: int_intervals, int_energy_slots, settings. Units: Wh, s, $, degC, min.
with

pieces as (
    select * from int_intervals
),

slots as (
    select device, slot_start, price_per_kwh from int_energy_slots
),

settings as (
    select timezone, freeze_tank_max_c from settings
),

marked as (
    select
        p.*,
        p.heating_on or p.heating_demand as active,
        coalesce(lag(p.heating_on or p.heating_demand) over w, false) as prev_active,
        coalesce(lag(p.setpoint_c) over w, p.setpoint_c) as prev_setpoint_c,
        sum(case when p.drawing then p.duration_s else 0 end) over recent / 60.0 as draw_min_2h
    from pieces as p
    window
        w as (partition by p.device order by p.interval_start),
        recent as (partition by p.device order by p.interval_start
                   range between interval 2 hours preceding and current row)
),

episodes as (
    select
        m.*,
        -- the setpoint before and at the start of the heating episode holding the piece
        last_value(case when m.active and not m.prev_active then m.prev_setpoint_c end ignore nulls)
            over w as episode_setpoint_before_c,
        last_value(case when m.active and not m.prev_active then m.setpoint_c end ignore nulls)
            over w as episode_setpoint_c
    from marked as m
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
),

changes as (
    select
        c.*,
        -- a new run at every piece without an element, a change of cause, or a long gap (the two
        -- halves of a sample split at midnight share its flags: only its first counts)
        not c.element_on or c.cause is distinct from lag(c.cause) over w
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
        arg_min(episode_setpoint_before_c, interval_start) as setpoint_before_c,
        arg_min(draw_min_2h, interval_start) as draw_min_2h
    from keyed
    where element_on
    group by device, run_key
)

select
    r.*,
    cast(timezone(s.timezone, r.run_start) as date) as local_day
from runs as r
cross join settings as s
