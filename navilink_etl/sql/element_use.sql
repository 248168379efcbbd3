-- element_use: one row per device per element run (int_element_runs): why the element ran
-- (cause, see int_element_runs), its electricity and cost, and how much of it a setting could
-- have avoided. avoidable_wh = element Wh - the heat pump's electricity for the same heat (the
-- element's heat = its electricity) at the modelled COP for the run's tank and room temperature
-- (macro cop_map x the device's cop_factor), for the causes a setting controls (mode_electric,
-- mode_high_demand, demand, setpoint_raise); zero for the others. avoidable_cost prices it at the
-- run's own price. evidence holds the numbers the cause rests on; draw_gal_2h sums the draws
-- mart's equivalent gallons of draws that started in the 2 h before the run. element_run_id
-- numbers the device's runs 1, 2, ... by start.
-- Inputs: int_element_runs, int_device_models, draws. Units: Wh, $, degC, gal, min.
with

runs as (
    select * from int_element_runs
),

models as (
    select device, cop_factor from int_device_models
),

drawn as (
    select device, draw_start, equivalent_gal from draws
),

recent_draws as (
    select
        r.device,
        r.run_start,
        sum(d.equivalent_gal) as draw_gal_2h
    from runs as r
    join drawn as d
        on d.device = r.device
        and d.draw_start <= r.run_start
        and d.draw_start > r.run_start - interval 2 hours
    group by r.device, r.run_start
),

valued as (
    select
        r.*,
        cop_map(r.tank_mean_c, r.ambient_c) * coalesce(m.cop_factor, 1.0) as modelled_cop,
        rd.draw_gal_2h
    from runs as r
    left join models as m using (device)
    left join recent_draws as rd on rd.device = r.device and rd.run_start = r.run_start
),

avoided as (
    select
        v.*,
        case when v.cause in ('mode_electric', 'mode_high_demand', 'demand', 'setpoint_raise')
             then greatest(0.0, v.element_wh - v.element_wh / greatest(v.modelled_cop, 1.0))
             else 0.0 end as avoidable_wh
    from valued as v
)

select
    device,
    row_number() over (partition by device order by run_start) as element_run_id,
    run_start,
    run_end,
    local_day,
    element_s,
    element_wh,
    cost,
    cause,
    avoidable_wh,
    avoidable_wh / nullif(priced_wh, 0) * cost as avoidable_cost,
    struct_pack(
        dhw_mode := dhw_mode,
        operation_mode := operation_mode,
        room_c := ambient_c,
        setpoint_c := setpoint_c,
        setpoint_before_c := setpoint_before_c,
        tank_upper_c := tank_upper_start_c,
        tank_lower_c := tank_lower_start_c,
        tank_mean_c := tank_mean_c,
        draw_min_2h := draw_min_2h,
        draw_gal_2h := coalesce(draw_gal_2h, 0.0),
        modelled_cop := modelled_cop
    ) as evidence
from avoided
