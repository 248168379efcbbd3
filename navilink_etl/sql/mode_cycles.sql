-- mode_cycles: one row per device per contiguous run of operationMode (mode_kind
-- 'operation_mode': 0 standby, 32 heat pump engaged, 64 element engaged, 96 both) and of the
-- selected DHW mode (mode_kind 'dhw_mode': 1 heat pump, 2 electric, 3 energy saver, 4 high demand,
-- 5 vacation, 6 off): the run's daily fragments joined (consecutive fragments of one mode are one
-- run). Gaps do not end a run; covered_s counts only the observed time. run_seq numbers the runs
-- of each kind 1, 2, ... by start.
-- mode_name: the macros operation_mode_name / dhw_mode_name, generated from protocol.py's enums
-- (the same names as Python's; unknown_<n> for a number the enums do not know).
-- local_day: the local day the run starts.
-- Inputs: int_mode_fragments, settings. Units: s, Wh, degC.
with

fragments as (
    select * from int_mode_fragments
),

flagged as (
    select
        *,
        coalesce(mode is distinct from lag(mode) over (
            partition by device, mode_kind order by fragment_start), true) as starts_run
    from fragments
),

keyed as (
    select
        *,
        sum(cast(starts_run as integer)) over (
            partition by device, mode_kind order by fragment_start
            rows between unbounded preceding and current row) as run_seq
    from flagged
)

select
    device,
    mode_kind,
    any_value(mode) as mode,
    case any_value(mode_kind)
        when 'operation_mode' then operation_mode_name(any_value(mode))
        else dhw_mode_name(any_value(mode))
    end as mode_name,
    cast(run_seq as bigint) as run_seq,
    min(fragment_start) as run_start,
    max(fragment_end) as run_end,
    cast(timezone(any_value(s.timezone), min(fragment_start)) as date) as local_day,
    epoch(max(fragment_end) - min(fragment_start)) as duration_s,
    sum(covered_s) as covered_s,
    sum(energy_wh) as energy_wh,
    sum(compressor_wh) as compressor_wh,
    sum(element_wh) as element_wh,
    arg_min(tank_mean_start_c, fragment_start) as tank_mean_start_c,
    arg_max(tank_mean_end_c, fragment_start) as tank_mean_end_c,
    arg_min(stored_start_wh, fragment_start) as stored_start_wh,
    arg_max(stored_end_wh, fragment_start) as stored_end_wh
from keyed
cross join (select timezone from settings) as s
group by device, mode_kind, run_seq
