-- int_intervals: one row per device per covered sample interval (a "piece"): each sample's values
-- (int_aligned_samples) hold until the next sample, but never longer than settings.gap_cap_s
-- (3 x poll, <= 15 min); time beyond the cap is a gap (int_gaps), never integrated. A piece
-- crossing local midnight is split in two, so every piece belongs to one local day. segment_id
-- counts the long gaps (missing time longer than the cap itself, e.g. an outage) before the
-- piece; after_gap marks a piece that follows one.
-- Inputs: int_aligned_samples, settings. Units: s, W, Wh, degC. A view: computed when read.
--
-- Attribution: the controls' floor (settings.standby_floor_w, ~1 W) is always standby; with a heat
-- source on, the rest goes to the compressor (compressor-only time) or the element, minus the
-- compressor share (its latest compressor-only power) when both run; with none on, all of the
-- aligned power is standby (controls, fan/EEV pre-run).
-- Run keys for the models downstream (one running count each, so they need no window of their
-- own; a key is constant within a run and differs between runs of a device): active_run
-- (int_cycle_pieces: runs of a heat source or heating demand, broken by a long gap), quiet_run
-- (int_standby_windows), op_run / dhw_run (int_mode_fragments: per change of operationMode / DHW
-- mode), draw_seq (int_draw_base: per start of dhwUse). They count from the first sample read (a
-- refresh reads a window of days), so they identify runs but never number them: the marts do.
-- All are counted per sample: the two pieces of a sample split at midnight share every flag.
-- prev_active (a heat source on or heating demand), prev_setpoint_c and prev_element_on are the
-- piece before's, so that int_element_runs needs no window over every piece.
with

aligned as (
    select * from int_aligned_samples
),

settings as (
    select * from settings
),

running as (
    select
        a.*,
        coalesce(last_value(
            case when a.compressor_running and not a.element_on
                 then a.aligned_power_w - st.standby_floor_w end ignore nulls
        ) over w, 0) as last_compressor_w,
        -- long gaps before this sample: every sample after one but the first starts a segment
        sum(cast(a.after_gap and a.prev_at is not null as integer)) over w as segment_id,
        max(case when a.drawing then a.covered_end end) over w as last_draw_end,
        -- running totals before this sample (int_cycles looks ahead with them)
        sum(a.disturbed) over w - a.disturbed as disturbed_before,
        sum(a.excess_kh) over w - a.excess_kh as excess_kh_before,
        sum(cast(not (a.heating_on or coalesce(a.heating_demand, false)) or a.after_gap
                 as integer)) over w as active_run,
        sum(cast(not a.quiet as integer)) over w as quiet_run,
        sum(cast(a.operation_mode is distinct from a.prev_operation_mode as integer)) over w
            as op_run,
        sum(cast(a.dhw_mode is distinct from a.prev_dhw_mode as integer)) over w as dhw_run,
        sum(cast(coalesce(a.drawing, false) and not a.prev_drawing as integer)) over w as draw_seq,
        lag(a.heating_on or coalesce(a.heating_demand, false)) over w as prev_sample_active,
        lag(a.setpoint_c) over w as prev_sample_setpoint_c,
        lag(a.element_on) over w as prev_sample_element_on
    from (
        select
            al.*,
            not al.heating_on and not coalesce(al.drawing, false) and not al.capped
                and coalesce(al.stored_wh - al.end_stored_wh, 0) <= 12.0 as quiet,
            cast(al.heating_on or coalesce(al.drawing, false) or al.capped as integer) as disturbed,
            coalesce((al.tank_mean_c - al.ambient_c) * epoch(al.covered_end - al.received_at)
                     / 3600.0, 0) as excess_kh
        from aligned as al
    ) as a
    cross join settings as st
    window w as (partition by a.device order by a.received_at
                 rows between unbounded preceding and current row)
),

attributed as (
    select
        r.*,
        case when r.compressor_running and r.element_on
                 then least(coalesce(nullif(r.last_compressor_w, 0), st.rated_compressor_w),
                            greatest(r.aligned_power_w - st.standby_floor_w, 0))
             when r.compressor_running then greatest(r.aligned_power_w - st.standby_floor_w, 0)
             else 0.0 end as compressor_w,
        case when r.heating_on then least(st.standby_floor_w, r.aligned_power_w) end as heating_floor_w,
        timezone(st.timezone, cast(r.local_day + 1 as timestamp)) as day_end_utc
    from running as r
    cross join settings as st
),

-- part 0: from the sample to local midnight at most; part 1: the rest, on the next local day
split as (
    select
        *,
        unnest(case when covered_end > day_end_utc then [0, 1] else [0] end) as part
    from attributed
),

pieces as (
    select
        * replace (local_day + part as local_day),
        case part when 0 then received_at else day_end_utc end as interval_start,
        case part when 0 then least(covered_end, day_end_utc) else covered_end end as interval_end
    from split
),

final as (
    select
        device,
        local_day,
        interval_start,
        interval_end,
        epoch(interval_end - interval_start) as duration_s,
        received_at as sample_at,
        next_at,
        capped,
        long_gap,
        after_gap,
        cast(segment_id as bigint) as segment_id,
        operation_mode,
        dhw_mode,
        setpoint_c,
        tank_upper_c,
        tank_lower_c,
        tank_mean_c,
        ambient_c,
        stored_wh,
        energy_to_setpoint_wh,
        full_recovery_wh,
        min_setpoint_c,
        end_tank_mean_c,
        end_stored_wh,
        end_setpoint_c,
        end_energy_to_setpoint_wh,
        compressor_running as compressor_on,
        element_on,
        heating_on,
        coalesce(heating_demand, false) as heating_demand,
        coalesce(drawing, false) as drawing,
        coalesce(anti_legionella_active, false) as anti_legionella_active,
        reported_power_w,
        aligned_power_w,
        power_source,
        compressor_w,
        case when element_on then aligned_power_w - heating_floor_w - compressor_w else 0.0 end
            as element_w,
        case when heating_on then heating_floor_w else aligned_power_w end as standby_w,
        last_draw_end,
        disturbed_before,
        excess_kh_before,
        quiet,
        cast(active_run as bigint) as active_run,
        cast(quiet_run as bigint) as quiet_run,
        cast(op_run as bigint) as op_run,
        cast(dhw_run as bigint) as dhw_run,
        cast(draw_seq as bigint) as draw_seq,
        -- the piece before (NULL for the first read): the sample before, or for the second part
        -- of a sample split at midnight the sample itself
        case part when 0 then prev_sample_active
                  else heating_on or coalesce(heating_demand, false) end as prev_active,
        case part when 0 then prev_sample_setpoint_c else setpoint_c end as prev_setpoint_c,
        case part when 0 then prev_sample_element_on else element_on end as prev_element_on
    from pieces
)

select
    *,
    compressor_w * duration_s / 3600.0 as compressor_wh,
    element_w * duration_s / 3600.0 as element_wh,
    standby_w * duration_s / 3600.0 as standby_wh,
    aligned_power_w * duration_s / 3600.0 as total_wh
from final
