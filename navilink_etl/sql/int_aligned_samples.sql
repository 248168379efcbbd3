-- int_aligned_samples: one row per device per status sample that has a next sample: the sample's
-- values, the next sample's (end_*), how long they hold (covered_end: the next sample, but never
-- beyond settings.gap_cap_s; capped when cut there; long_gap / after_gap: missing time longer
-- than the cap itself after / before the sample), the relay flags with unknowns inferred, and
-- the power aligned to them.
-- Power alignment: currentInstPower lags the relay flags by one message, so the
-- interval that starts at sample k is integrated with the power reported by sample k+1
-- (aligned_power_w, power_source 'next'; the sample's own reading is reported_power_w). When that
-- reading's class (idle < idle_max_w <= compressor < element_min_w <= element) disagrees with
-- sample k's relay flags, or the next sample lies beyond the gap cap, sample k's own reading is
-- used if it agrees ('own'), else the rated power ('rated'). Unknown flags (wire 0) are inferred
-- from the power class.
-- Inputs: stg_status, settings. Units: s, W, Wh, degC. A view: computed when read.
with

samples as (
    select
        device, received_at, local_day, operation_mode, dhw_mode, setpoint_c, min_setpoint_c,
        tank_upper_c, tank_lower_c, tank_mean_c, ambient_c, power_w, compressor_on,
        upper_element_on, lower_element_on, drawing, heating_demand, anti_legionella_active,
        stored_wh, energy_to_setpoint_wh, full_recovery_wh
    from stg_status
),

settings as (
    select * from settings
),

paired as (
    select
        s.*,
        lead(s.received_at) over w as next_at,
        lead(s.power_w) over w as next_power_w,
        lead(s.tank_mean_c) over w as end_tank_mean_c,
        lead(s.stored_wh) over w as end_stored_wh,
        lead(s.setpoint_c) over w as end_setpoint_c,
        lead(s.energy_to_setpoint_wh) over w as end_energy_to_setpoint_wh,
        lag(s.received_at) over w as prev_at,
        lag(s.operation_mode) over w as prev_operation_mode,
        lag(s.dhw_mode) over w as prev_dhw_mode,
        coalesce(lag(s.drawing) over w, false) as prev_drawing
    from samples as s
    window w as (partition by s.device order by s.received_at)
),

classified as (
    select
        p.*,
        case when p.next_power_w >= st.element_min_w then 2
             when p.next_power_w >= st.idle_max_w then 1
             when p.next_power_w is not null then 0 end as next_class,
        case when p.power_w >= st.element_min_w then 2
             when p.power_w >= st.idle_max_w then 1
             when p.power_w is not null then 0 end as own_class,
        epoch(p.next_at - p.received_at) > st.gap_cap_s as capped,
        -- a gap longer than the cap itself starts a new segment (cycles do not span it)
        epoch(p.next_at - p.received_at) > 2 * st.gap_cap_s as long_gap,
        coalesce(epoch(p.received_at - p.prev_at) > 2 * st.gap_cap_s, true) as after_gap,
        least(p.next_at, p.received_at + to_microseconds(cast(st.gap_cap_s * 1e6 as bigint)))
            as covered_end
    from paired as p
    cross join settings as st
    where p.next_at is not null
),

flags as (
    select
        c.*,
        case when c.upper_element_on is null and c.lower_element_on is null
             then coalesce(c.next_class = 2, false)
             else coalesce(c.upper_element_on, false) or coalesce(c.lower_element_on, false)
        end as element_on,
        coalesce(c.compressor_on, c.next_class = 1, false) as compressor_running
    from classified as c
),

powered as (
    select
        f.*,
        f.compressor_running or f.element_on as heating_on,
        case when f.element_on then 2 when f.compressor_running then 1 else 0 end as flag_class
    from flags as f
),

aligned as (
    select
        p.* rename (power_w as reported_power_w),
        case when not p.capped and p.next_class = p.flag_class then p.next_power_w
             when p.own_class = p.flag_class then p.power_w
             when p.flag_class = 2
                 then st.rated_element_w + (case when p.compressor_running
                                                  then st.rated_compressor_w else 0 end)
             when p.flag_class = 1 then st.rated_compressor_w
             else least(coalesce(p.power_w, 1.0), st.idle_max_w) end as aligned_power_w,
        case when not p.capped and p.next_class = p.flag_class then 'next'
             when p.own_class = p.flag_class then 'own'
             else 'rated' end as power_source
    from powered as p
    cross join settings as st
)

select * from aligned
