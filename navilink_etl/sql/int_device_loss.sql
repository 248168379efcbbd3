-- int_device_loss: one row per device with data: its standby heat-loss coefficient and tank heat
-- capacity. ua_w_per_k is the median over standby_loss windows with at least 2 h of fit
-- (settings.default_ua_w_per_k until one exists); capacity_wh_per_k comes from
-- int_device_capacity, else the standby windows (UA / k), else
-- settings.default_capacity_wh_per_k.
-- Inputs: standby_loss, int_device_capacity, int_device_states, settings. Units: W/K, Wh/K.
with

windows as (
    select * from standby_loss
    where energy_fit_s >= 7200 and ua_w_per_k > 0
),

capacity as (
    select * from int_device_capacity
),

devices as (
    select distinct device from int_device_states
),

settings as (
    select default_ua_w_per_k, default_capacity_wh_per_k from settings
),

fitted as (
    select
        device,
        median(ua_w_per_k) as ua_w_per_k,
        median(energy_ua_w_per_k / k_per_h) as capacity_wh_per_k,
        count(*) as standby_windows
    from windows
    group by device
)

select
    d.device,
    coalesce(f.ua_w_per_k, s.default_ua_w_per_k) as ua_w_per_k,
    f.ua_w_per_k is null as ua_defaulted,
    coalesce(f.standby_windows, 0) as standby_windows,
    coalesce(c.capacity_wh_per_k, f.capacity_wh_per_k, s.default_capacity_wh_per_k)
        as capacity_wh_per_k,
    case when c.capacity_source is not null then c.capacity_source
         when f.capacity_wh_per_k is not null then 'standby_fit'
         else 'default' end as capacity_source
from devices as d
left join fitted as f using (device)
left join capacity as c using (device)
cross join settings as s
