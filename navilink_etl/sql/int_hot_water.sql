-- int_hot_water: one row per device per status sample: the hot water left in the tank, as gallons
-- at the delivery temperature (settings.delivery_c, mixed with inlet water at the tap), and the
-- time to full at the heat source running now (docs/metrics.md 7); stored as hot_water.
-- The tank's heat C x (T_mean - T_inlet) comes from its energy fields (T_mean = setpoint - energy
-- to setpoint / C, C per sample = full-recovery energy / (setpoint - reference)). The vertical
-- profile is piecewise linear: from the inlet temperature at the bottom (where cold water enters)
-- to the lower thermistor, between the two thermistors, and from the upper thermistor to the top,
-- whose temperature (outlet_c, the water leaving the tank) makes the profile hold the measured
-- heat, between the upper reading and the hottest upper reading of the last 3 h less 0.5 K/h
-- (as in int_draw_base).
-- Only water at or above the delivery temperature counts; each gallon of it at T gives
-- (T - T_inlet) / (T_delivery - T_inlet) gallons at the tap.
-- Inputs: stg_status, settings. Units: degC, Wh, gal, min.
with

samples as (
    select
        device, received_at, local_day, setpoint_c, min_setpoint_c, full_recovery_wh,
        energy_to_setpoint_wh, tank_mean_c, tank_upper_c, tank_lower_c, ambient_c, power_w,
        drawing, compressor_on, upper_element_on, lower_element_on
    from stg_status
),

settings as (
    select
        inlet_c, delivery_c, default_reference_c, default_capacity_wh_per_k, wh_per_gal_degf,
        degf_per_k, standby_floor_w, rated_compressor_w, lower_sensor_height as z_lo,
        upper_sensor_height as z_up
    from settings
),

hottest as (
    -- the top keeps the hottest water the upper thermistor saw in the last 3 h (cooling slowly)
    select
        p.*,
        max(p.tank_upper_c + epoch(p.received_at) / 3600.0 * 0.5) over (
            partition by p.device order by p.received_at
            range between interval 3 hours preceding and current row)
            - epoch(p.received_at) / 3600.0 * 0.5 as top_max_c
    from samples as p
),

capacity as (
    select
        x.*,
        coalesce(
            x.full_recovery_wh
                / nullif(x.setpoint_c - coalesce(x.min_setpoint_c, s.default_reference_c), 0),
            s.default_capacity_wh_per_k) as capacity_wh_per_k
    from hottest as x
    cross join settings as s
),

mean_temperature as (
    select
        c.*,
        coalesce(c.setpoint_c - c.energy_to_setpoint_wh / nullif(c.capacity_wh_per_k, 0),
                 c.tank_mean_c) as heat_mean_c,
        c.capacity_wh_per_k / (s.wh_per_gal_degf * s.degf_per_k) as tank_gal
    from capacity as c
    cross join settings as s
),

profile as (
    -- the top temperature that closes the heat balance over the three layers
    select
        m.*,
        s.inlet_c + ((m.heat_mean_c - s.inlet_c)
                     - s.z_lo * (m.tank_lower_c - s.inlet_c) / 2
                     - (s.z_up - s.z_lo) * ((m.tank_lower_c + m.tank_upper_c) / 2 - s.inlet_c))
                    / (1 - s.z_up) as top_layer_mean_c
    from mean_temperature as m
    cross join settings as s
),

outlet as (
    select
        p.*,
        -- a stratified tank is at least as hot at its top as at the upper thermistor
        least(greatest(2 * p.top_layer_mean_c - p.tank_upper_c, p.tank_upper_c),
              greatest(p.tank_upper_c, p.top_max_c)) as outlet_c
    from profile as p
    cross join settings as s
),

usable as (
    -- per layer [height, temperature at its bottom, at its top]: the part at or above delivery,
    -- as heat above the inlet per unit height (K)
    select
        o.*,
        list_sum(list_transform(
            [[s.z_lo, s.inlet_c, o.tank_lower_c],
             [s.z_up - s.z_lo, o.tank_lower_c, o.tank_upper_c],
             [1 - s.z_up, o.tank_upper_c, o.outlet_c]],
            lambda l: case
                when least(l[2], l[3]) >= s.delivery_c
                    then l[1] * ((l[2] + l[3]) / 2 - s.inlet_c)
                when greatest(l[2], l[3]) <= s.delivery_c then 0.0
                else l[1] * (greatest(l[2], l[3]) - s.delivery_c)
                     / abs(l[3] - l[2])
                     * ((greatest(l[2], l[3]) + s.delivery_c) / 2 - s.inlet_c)
            end)) as usable_k
    from outlet as o
    cross join settings as s
),

compressor as (
    select
        u.*,
        case when not coalesce(u.compressor_on, false) then 0.0
             when u.upper_element_on or u.lower_element_on then s.rated_compressor_w
             else greatest(u.power_w - s.standby_floor_w, 0) end as compressor_w
    from usable as u
    cross join settings as s
),

heat_rate as (
    -- heat going into the water now: compressor x the COP map, plus the element's power
    select
        c.*,
        c.compressor_w * coalesce(cop_map(c.heat_mean_c, c.ambient_c), 0)
        + case when c.upper_element_on or c.lower_element_on
               then greatest(c.power_w - s.standby_floor_w - c.compressor_w, 0)
               else 0.0 end as heating_w
    from compressor as c
    cross join settings as s
)

select
    h.device,
    h.received_at,
    h.local_day,
    h.setpoint_c,
    h.tank_upper_c,
    h.tank_lower_c,
    h.heat_mean_c,
    h.outlet_c,
    greatest(h.tank_upper_c, h.top_max_c) as hottest_c,
    s.inlet_c,
    s.delivery_c,
    h.tank_gal,
    greatest(h.tank_gal * h.usable_k / (s.delivery_c - s.inlet_c), 0) as gallons_available,
    case when h.setpoint_c >= s.delivery_c
         then h.tank_gal * (h.setpoint_c - s.inlet_c) / (s.delivery_c - s.inlet_c)
         else 0 end as gallons_full,
    h.drawing,
    h.compressor_on,
    h.upper_element_on or h.lower_element_on as element_on,
    h.heating_w,
    case when coalesce(h.energy_to_setpoint_wh, 0) <= 0 then 0.0
         when h.heating_w > 0 then h.energy_to_setpoint_wh / h.heating_w * 60.0
    end as minutes_to_full
from heat_rate as h
cross join settings as s
