-- int_mode_fragments: one row per device per local day per mode kind per contiguous run of that
-- mode within the day (mode_kind 'operation_mode' and 'dhw_mode', see mode_cycles): the pieces of
-- a mode run that fall on one local day. mode_cycles joins a run's fragments across days, so a
-- run lasting months costs one row per day here. Stored, keyed by local_day.
-- Inputs: int_intervals. Units: s, Wh, degC.
with

pieces as (
    select * from int_intervals
),

-- both run keys come with the pieces (int_intervals.op_run, dhw_run)
keyed as (
    select 'operation_mode' as mode_kind, operation_mode as mode, op_run as run_key,
        device, local_day, interval_start, interval_end, duration_s, total_wh, compressor_wh,
        element_wh, tank_mean_c, end_tank_mean_c, stored_wh, end_stored_wh
    from pieces
    union all
    select 'dhw_mode' as mode_kind, dhw_mode as mode, dhw_run as run_key,
        device, local_day, interval_start, interval_end, duration_s, total_wh, compressor_wh,
        element_wh, tank_mean_c, end_tank_mean_c, stored_wh, end_stored_wh
    from pieces
)

select
    device,
    local_day,
    mode_kind,
    any_value(mode) as mode,
    min(interval_start) as fragment_start,
    max(interval_end) as fragment_end,
    sum(duration_s) as covered_s,
    sum(total_wh) as energy_wh,
    sum(compressor_wh) as compressor_wh,
    sum(element_wh) as element_wh,
    arg_min(tank_mean_c, interval_start) as tank_mean_start_c,
    arg_max(end_tank_mean_c, interval_start) as tank_mean_end_c,
    arg_min(stored_wh, interval_start) as stored_start_wh,
    arg_max(end_stored_wh, interval_start) as stored_end_wh
from keyed
group by device, local_day, mode_kind, run_key
