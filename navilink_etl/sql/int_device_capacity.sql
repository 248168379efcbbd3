-- int_device_capacity: one row per device whose energy fields identify its tank heat capacity C.
-- The device's full-recovery energy is C x (setpoint - reference): across two or more setpoints
-- the slope gives C exactly ('setpoint_change'); with one, C = full-recovery energy / (setpoint -
-- reference), the reference being the minimum setpoint the newer firmware reports, else
-- settings.default_reference_c (~35 degC on the 2025-09 firmware, docs/protocol.md 4.4: an
-- assumption, hence capacity_source 'reference').
-- Inputs: int_device_states, settings. Units: Wh/K.
with

states as (
    select distinct device, setpoint_c, full_recovery_wh, min_setpoint_c from int_device_states
),

settings as (
    select default_reference_c from settings
),

setpoint_steps as (
    select device, regr_slope(full_recovery_wh, setpoint_c) as capacity_wh_per_k
    from states
    group by device
    having max(setpoint_c) - min(setpoint_c) >= 1
),

reference_based as (
    select
        st.device,
        median(st.full_recovery_wh
               / (st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c)))
            as capacity_wh_per_k
    from states as st
    cross join settings as s
    where st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c) >= 10
    group by st.device
)

select
    r.device,
    coalesce(p.capacity_wh_per_k, r.capacity_wh_per_k) as capacity_wh_per_k,
    case when p.capacity_wh_per_k is not null then 'setpoint_change' else 'reference' end
        as capacity_source
from reference_based as r
left join setpoint_steps as p using (device)
