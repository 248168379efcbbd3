-- int_cycles: one row per device per heating cycle: int_cycle_base with the device's UA, the end
-- state and the heat delivered where it can be measured.
-- measurable: no draw overlapped, no gap at either end, and the device's stored-energy figure is
-- valid at both ends (at a clipped end, the settled later sample plus the standby loss meanwhile).
-- measured_heat_wh = stored_end_wh - stored_start_wh + UA x integral(T_tank - T_room) dt.
-- Inputs: int_cycle_base, int_device_loss. Units: s, Wh, degC, K*h, W/K.
with

cycles as (
    select * from int_cycle_base
),

loss as (
    select * from int_device_loss
),

ends as (
    select
        a.*,
        l.ua_w_per_k,
        case when a.energy_to_setpoint_end_wh > 0 then a.end_sample_stored_wh
             when a.settled_quiet then a.settled_stored_wh + l.ua_w_per_k * a.settled_excess_kh
        end as stored_end_wh
    from cycles as a
    join loss as l using (device)
)

select
    *,
    epoch(cycle_end - cycle_start) as duration_s,
    ua_w_per_k * excess_kh as loss_wh,
    coalesce(not draw_overlap and not starts_after_gap and not ends_at_gap
             and energy_to_setpoint_start_wh > 0 and stored_end_wh is not null, false)
        as measurable,
    case when not draw_overlap and not starts_after_gap and not ends_at_gap
              and energy_to_setpoint_start_wh > 0
         then stored_end_wh - stored_start_wh + ua_w_per_k * excess_kh end as measured_heat_wh
from ends
