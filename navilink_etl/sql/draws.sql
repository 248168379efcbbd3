-- draws: one row per device per hot-water draw (int_draw_base). The device has no flow meter, so
-- the energy removed is the drop in its stored energy from the sample before the draw to the
-- sample after it, plus heat added meanwhile (element Wh + compressor Wh x the device's fitted COP,
-- method 'modelled' when any heating overlapped, else 'measured'), minus standby loss (UA x
-- integral(T - T_room) dt). Equivalent gallons at the tank-to-inlet rise: energy /
-- (settings.wh_per_gal_degf x rise in degF), the inlet from settings.inlet_c. draw_id numbers the
-- device's draws 1, 2, ... by start.
-- Inputs: int_draw_base, int_device_models, settings. Units: s, Wh, gal, degC.
with

base as (
    select * from int_draw_base
),

models as (
    select * from int_device_models
),

settings as (
    select inlet_c, wh_per_gal_degf, degf_per_k from settings
),

energy as (
    select
        d.*,
        d.stored_before_wh - d.stored_after_wh
            + d.heat_element_wh + coalesce(m.cop_factor, 1.0) * d.comp_map_wh
            - coalesce(m.ua_w_per_k, 0) * d.excess_kh as energy_wh
    from base as d
    left join models as m using (device)
)

select
    e.device,
    row_number() over (partition by e.device order by e.draw_start) as draw_id,
    e.draw_start,
    e.draw_end,
    e.local_day,
    epoch(e.draw_end - e.draw_start) as duration_s,
    e.energy_wh,
    e.energy_wh / nullif(s.wh_per_gal_degf * (e.outlet_c - s.inlet_c) * s.degf_per_k, 0)
        as equivalent_gal,
    e.outlet_c,
    s.inlet_c,
    e.heating_overlap,
    e.at_gap,
    e.energy_to_setpoint_before_wh = 0 as started_at_setpoint,
    case when e.heating_overlap then 'modelled' else 'measured' end as method
from energy as e
cross join settings as s
