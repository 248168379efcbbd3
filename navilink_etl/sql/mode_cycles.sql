-- mode_cycles: one row per device per contiguous run of operationMode (mode_kind
-- 'operation_mode': 0 standby, 32 heat pump engaged, 64 element engaged, 96 both) and of the
-- selected DHW mode (mode_kind 'dhw_mode': 1 heat pump, 2 electric, 3 energy saver, 4 high demand,
-- 5 vacation, 6 off). Gaps do not end a run; covered_s counts only the observed time.
-- Inputs: int_intervals. Units: s, Wh, degC.
with

pieces as (
    select * from int_intervals
),

-- both run numberings come with the pieces (int_intervals.op_run, dhw_run)
keyed as (
    select 'operation_mode' as mode_kind, operation_mode as mode, op_run as run_seq,
        device, interval_start, interval_end, duration_s, total_wh, compressor_wh, element_wh,
        tank_mean_c, end_tank_mean_c, stored_wh, end_stored_wh
    from pieces
    union all
    select 'dhw_mode' as mode_kind, dhw_mode as mode, dhw_run as run_seq,
        device, interval_start, interval_end, duration_s, total_wh, compressor_wh, element_wh,
        tank_mean_c, end_tank_mean_c, stored_wh, end_stored_wh
    from pieces
)

select
    device,
    mode_kind,
    any_value(mode) as mode,
    case any_value(mode_kind)
        when 'operation_mode' then case any_value(mode) when 0 then 'standby'
            when 32 then 'heat_pump' when 64 then 'element' when 96 then 'heat_pump+element'
            else 'unknown' end
        else case any_value(mode) when 1 then 'heat_pump' when 2 then 'electric'
            when 3 then 'energy_saver' when 4 then 'high_demand' when 5 then 'vacation'
            when 6 then 'off' else 'unknown' end
    end as mode_name,
    cast(run_seq as bigint) as run_seq,
    min(interval_start) as run_start,
    max(interval_end) as run_end,
    epoch(max(interval_end) - min(interval_start)) as duration_s,
    sum(duration_s) as covered_s,
    sum(total_wh) as energy_wh,
    sum(compressor_wh) as compressor_wh,
    sum(element_wh) as element_wh,
    arg_min(tank_mean_c, interval_start) as tank_mean_start_c,
    arg_max(end_tank_mean_c, interval_start) as tank_mean_end_c,
    arg_min(stored_wh, interval_start) as stored_start_wh,
    arg_max(end_stored_wh, interval_start) as stored_end_wh
from keyed
group by device, mode_kind, run_seq
