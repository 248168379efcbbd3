-- int_standby_windows: one row per device per standby-decay window: a run of at least
-- settings.standby_min_s with no heat source, no draw (dhwUse) and no unexplained drop in stored
-- energy (a draw between polls), without gaps. Stored; rows are keyed by the local day the window
-- starts (local_day) and depend on samples up to window_end.
-- Fit: ln((T - T_room)/(T0 - T_room)) = -k t on the mean of the two tank
-- thermistors. energy_ua_w_per_k needs no heat capacity: the fall of the device's stored energy
-- over integral(T - T_room) dt, over the part of the window where its energy-to-setpoint is above
-- zero (at the setpoint that figure is clipped). The UA (k x capacity) is in standby_loss.
-- Inputs: int_intervals, settings. Units: 1/h, W/K, s, degC.
with

pieces as (
    select * from int_intervals
),

settings as (
    select standby_min_s, timezone from settings
),

-- quiet pieces, keyed by their run (int_intervals.quiet, quiet_run)
runs as (
    select *, quiet_run as run_id from pieces where quiet
),

windows as (
    select
        device,
        run_id,
        min(interval_start) as window_start,
        max(interval_end) as window_end,
        sum(duration_s) as duration_s,
        arg_min(tank_mean_c, interval_start) as tank_start_c,
        arg_max(end_tank_mean_c, interval_start) as tank_end_c,
        sum(ambient_c * duration_s) / sum(duration_s) as room_c,
        sum(tank_mean_c * duration_s) / sum(duration_s) as tank_c,
        min(interval_start) filter (where energy_to_setpoint_wh > 0) as fit_start,
        arg_min(stored_wh, interval_start) filter (where energy_to_setpoint_wh > 0)
            as stored_start_wh,
        arg_max(end_stored_wh, interval_start) as stored_end_wh,
        sum((tank_mean_c - ambient_c) * duration_s / 3600.0)
            filter (where energy_to_setpoint_wh > 0) as excess_kh
    from runs
    group by device, run_id
),

long_windows as (
    select w.*
    from windows as w
    cross join settings as s
    where w.duration_s >= s.standby_min_s
),

fits as (
    select
        r.device,
        r.run_id,
        -regr_slope(
            ln(r.tank_mean_c - w.room_c),
            epoch(r.interval_start - w.window_start) / 3600.0) as k_per_h
    from runs as r
    join long_windows as w on r.device = w.device and r.run_id = w.run_id
    where r.tank_mean_c > w.room_c
    group by r.device, r.run_id
)

select
    w.device,
    cast(timezone(s.timezone, w.window_start) as date) as local_day,
    w.window_start,
    w.window_end,
    w.duration_s,
    w.tank_start_c,
    w.tank_end_c,
    w.tank_c,
    w.room_c,
    f.k_per_h,
    (w.stored_start_wh - w.stored_end_wh) / nullif(w.excess_kh, 0) as energy_ua_w_per_k,
    epoch(w.window_end - w.fit_start) as energy_fit_s
from long_windows as w
join fits as f on w.device = f.device and w.run_id = f.run_id
cross join settings as s
