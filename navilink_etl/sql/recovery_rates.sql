-- recovery_rates: one row per device per measured heating cycle without a draw: how fast the
-- active sources recover the tank (docs/metrics.md 2). thermal_w = heat delivered / duration;
-- k_per_h = rise of the tank's mean temperature per hour, from the device's stored energy and the
-- tank heat capacity (int_device_models.capacity_wh_per_k); sensor_k_per_h = the same from the
-- mean of the two thermistors (stratification makes it differ); gal_per_h_67f = gallons per hour
-- at a 67 degF rise = thermal_w / (settings.wh_per_gal_degf x 67).
-- Inputs: heating_cycles, int_device_models, settings. Units: K/h, W, gal/h, degC.
with

cycles as (
    select * from heating_cycles
    where method = 'measured' and not draw_overlap and duration_s > 0
),

models as (
    select device, capacity_wh_per_k from int_device_models
),

settings as (
    select wh_per_gal_degf from settings
)

select
    c.device,
    c.cycle_id,
    c.cycle_start,
    c.local_day,
    c.source_mix,
    c.ambient_c,
    floor(c.ambient_c / 5.0) * 5.0 as ambient_band_c,
    c.duration_s,
    c.tank_mean_start_c,
    c.tank_mean_end_c,
    (c.stored_end_wh - c.stored_start_wh) / m.capacity_wh_per_k / (c.duration_s / 3600.0)
        as k_per_h,
    (c.tank_mean_end_c - c.tank_mean_start_c) / (c.duration_s / 3600.0) as sensor_k_per_h,
    c.heat_out_wh / (c.duration_s / 3600.0) as thermal_w,
    c.heat_out_wh / (c.duration_s / 3600.0) / (s.wh_per_gal_degf * 67.0) as gal_per_h_67f,
    c.heat_out_wh,
    c.electric_wh,
    c.cop
from cycles as c
join models as m using (device)
cross join settings as s
