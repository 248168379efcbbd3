-- standby_loss: one row per device per standby-decay window (int_standby_windows) with its heat
-- loss: UA = C k with C from int_device_capacity; a device without a capacity takes the
-- energy-based UA (energy_ua_w_per_k: it reads low while the tank is stratified, as the thermistor
-- mean then overstates the tank's mean). half_life_h = ln 2 / k; loss_w = UA x (tank - room).
-- Inputs: int_standby_windows, int_device_capacity. Units: W/K, 1/h, h, degC, W.
with

windows as (
    select * from int_standby_windows
),

capacity as (
    select * from int_device_capacity
)

select
    w.device,
    w.local_day,
    w.window_start,
    w.window_end,
    w.duration_s,
    w.tank_start_c,
    w.tank_end_c,
    w.tank_c,
    w.room_c,
    w.k_per_h,
    ln(2) / nullif(w.k_per_h, 0) as half_life_h,
    coalesce(c.capacity_wh_per_k * w.k_per_h, w.energy_ua_w_per_k) as ua_w_per_k,
    w.energy_ua_w_per_k,
    coalesce(c.capacity_wh_per_k * w.k_per_h, w.energy_ua_w_per_k) * (w.tank_c - w.room_c)
        as loss_w,
    w.energy_fit_s
from windows as w
left join capacity as c using (device)
