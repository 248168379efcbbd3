-- device_model_history: one row per device per ISO week (Monday to Sunday, local days) with data:
-- the device_model fit over that week's own standby windows, measured cycles, element pieces,
-- reported states and flushing draws, so a parameter that drifts shows week by week. Same methods
-- and errors as device_model (docs/metrics.md 2.13); a parameter is NULL in a week without data for
-- it (never a default). capacity_wh_per_k: the week's setpoint slope when it saw two setpoints, else
-- the median full recovery / (setpoint - reference); the COP map is read with it (the device's
-- current capacity when the week has none). inlet_c: the week's flushing draws. as_of is the week's
-- last sample.
-- Inputs: int_device_models, int_device_states, standby_loss, int_cycles, int_cycle_hp_map,
-- int_element_days, int_draw_inlet, draws, int_day_energy, settings. Units: Wh/K, W/K, W, degC.
with

models as (
    select * from int_device_models
),

states as (
    select distinct device, date_trunc('week', local_day) as week, setpoint_c, full_recovery_wh,
        min_setpoint_c
    from int_device_states
),

windows as (
    select *, date_trunc('week', local_day) as week from standby_loss
    where energy_fit_s >= 7200 and ua_w_per_k > 0
),

cycles as (
    select *, date_trunc('week', local_day) as week from int_cycles
    where measurable and compressor_wh > 100 and element_wh = 0
),

hp_map as (
    select * from int_cycle_hp_map
),

element_days as (
    select *, date_trunc('week', local_day) as week from int_element_days
),

draw_inlet as (
    select * from int_draw_inlet
),

draws as (
    select * from draws
),

days as (
    select *, date_trunc('week', local_day) as week from int_day_energy
),

settings as (
    select default_reference_c from settings
),

assumptions as (
    select 1.0 as reference_sd_k, 4.0 / sqrt(12.0) as count_sd_wh, 1.0 / sqrt(12.0) as power_sd_w,
        5.0 / 12.0 as condenser_share, 0.1 as compressor_share_sd, 600.0 as element_only_min_s
),

weeks as (
    select device, week, max(last_sample_at) as as_of
    from days
    where last_sample_at is not null
    group by device, week
),

capacity as (
    select
        st.device,
        st.week,
        case when max(st.setpoint_c) - min(st.setpoint_c) >= 1
             then regr_slope(st.full_recovery_wh, st.setpoint_c) end as slope,
        case when max(st.setpoint_c) - min(st.setpoint_c) >= 1
             then greatest(
                 sqrt(greatest(regr_syy(st.full_recovery_wh, st.setpoint_c)
                               - regr_sxy(st.full_recovery_wh, st.setpoint_c) ^ 2
                                 / regr_sxx(st.full_recovery_wh, st.setpoint_c), 0)
                      / nullif(regr_count(st.full_recovery_wh, st.setpoint_c)::bigint - 2, 0)
                      / regr_sxx(st.full_recovery_wh, st.setpoint_c)),
                 any_value(a.count_sd_wh) * sqrt(2.0 / regr_sxx(st.full_recovery_wh, st.setpoint_c)))
        end as slope_se,
        median(st.full_recovery_wh / (st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c)))
            filter (where st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c) >= 10)
            as reference,
        sqrt(coalesce(var_samp(st.full_recovery_wh / (st.setpoint_c - coalesce(st.min_setpoint_c,
                                                                                s.default_reference_c)))
                          filter (where st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c) >= 10)
                      / count(*) filter (where st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c) >= 10), 0)
             + (avg(a.count_sd_wh / (st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c)))
                    filter (where st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c) >= 10)) ^ 2
             + (avg(case when st.min_setpoint_c is null
                         then a.reference_sd_k * st.full_recovery_wh
                              / (st.setpoint_c - s.default_reference_c) ^ 2
                         else 0 end)
                    filter (where st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c) >= 10)) ^ 2)
            as reference_se
    from states as st
    cross join settings as s
    cross join assumptions as a
    group by st.device, st.week
),

standby as (
    select
        device,
        week,
        median(ua_w_per_k) as ua_w_per_k,
        1.2533 * stddev_samp(ua_w_per_k) / sqrt(count(*)) as ua_se,
        count(*) as n_standby_windows
    from windows
    group by device, week
),

-- as in device_model, with the week's capacity (the device's current one when the week has none)
cycle_capacity as (
    select
        c.*,
        x.high,
        coalesce(k.slope, k.reference, m.capacity_wh_per_k)
            + case when x.high
                   then coalesce(case when k.slope is not null then k.slope_se
                                      else k.reference_se end, 0)
                   else 0 end as c_wh_per_k
    from cycles as c
    join models as m on c.device = m.device
    left join capacity as k on c.device = k.device and c.week = k.week
    cross join (values (false), (true)) as x(high)
),

cycle_ratios as (
    select
        c.device,
        c.week,
        c.high,
        (c.measured_heat_wh - c.loss_wh
         + c.ua_w_per_k * (h.excess_reference_kh + h.stored_wh_h / c.c_wh_per_k))
        / (h.map_a_wh
           + (1 + 1 / a.condenser_share) / 2
             * (h.map_b_reference_wh + h.map_b_stored_wh / c.c_wh_per_k)
           - (1 - a.condenser_share) / (2 * a.condenser_share) * h.map_b_upper_wh) as ratio
    from cycle_capacity as c
    join hp_map as h on c.device = h.device and c.cycle_start = h.cycle_start
    cross join assumptions as a
),

measured_cycles as (
    select
        device,
        week,
        median(ratio) filter (where not high) as cop_factor,
        sqrt((1.2533 * stddev_samp(ratio) filter (where not high)
              / sqrt(count(*) filter (where not high))) ^ 2
             + (median(ratio) filter (where high) - median(ratio) filter (where not high)) ^ 2)
            as cop_se,
        count(*) filter (where not high) as n_cycles
    from cycle_ratios
    group by device, week
),

element_kind as (
    select e.device, sum(e.element_only_s) >= any_value(a.element_only_min_s) as element_only
    from element_days as e
    cross join assumptions as a
    group by e.device
),

element_obs as (
    select
        e.device,
        e.week,
        case when k.element_only then e.element_only_s else e.hybrid_s end / 3600.0 as h,
        case when k.element_only then e.element_only_wh else e.hybrid_element_wh end as wh,
        case when k.element_only then 0.0 else e.hybrid_compressor_wh end as compressor_wh
    from element_days as e
    join element_kind as k using (device)
    where case when k.element_only then e.element_only_s else e.hybrid_s end > 0
),

element_ratio as (
    select device, week, sum(wh) / sum(h) as element_w, sum(compressor_wh) / sum(h) as compressor_w
    from element_obs
    group by device, week
),

element as (
    select
        o.device,
        o.week,
        any_value(r.element_w) as element_w,
        sqrt(coalesce(sum((o.wh - o.h * r.element_w) ^ 2) / nullif(count(*) * (count(*) - 1), 0)
                      / avg(o.h) ^ 2, 0)
             + any_value(a.power_sd_w) ^ 2
             + (any_value(a.compressor_share_sd) * any_value(r.compressor_w)) ^ 2) as element_se
    from element_obs as o
    join element_ratio as r using (device, week)
    cross join assumptions as a
    group by o.device, o.week
),

flushing as (
    select
        i.device,
        date_trunc('week', d.local_day) as week,
        i.lower_min_c,
        row_number() over (partition by i.device, date_trunc('week', d.local_day)
                           order by i.lower_min_c) as rank,
        count(*) over (partition by i.device, date_trunc('week', d.local_day)) as n
    from draws as d
    join draw_inlet as i on d.device = i.device and d.draw_start = i.draw_start
    where not i.at_gap and not i.electric_mode and i.lower_before_c - i.lower_min_c >= 10
),

inlet as (
    select
        device,
        week,
        avg(lower_min_c) as inlet_c,
        stddev_samp(lower_min_c) / sqrt(count(*)) as inlet_se,
        any_value(n) as n_draws
    from flushing
    where rank <= greatest(3, ceil(n / 10.0))
    group by device, week
)

select
    w.device,
    cast(w.week as date) as week,
    w.as_of,
    coalesce(c.slope, c.reference) as capacity_wh_per_k,
    case when c.slope is not null then c.slope_se
         when c.reference is not null then c.reference_se end as capacity_wh_per_k_se,
    sb.ua_w_per_k,
    sb.ua_w_per_k * sqrt((sb.ua_se / sb.ua_w_per_k) ^ 2
        + coalesce((case when c.slope is not null then c.slope_se else c.reference_se end)
                   / coalesce(c.slope, c.reference), 0) ^ 2) as ua_w_per_k_se,
    mc.cop_factor,
    mc.cop_se as cop_factor_se,
    e.element_w,
    e.element_se as element_w_se,
    i.inlet_c,
    i.inlet_se as inlet_c_se,
    coalesce(mc.n_cycles, 0) as n_cycles,
    coalesce(sb.n_standby_windows, 0) as n_standby_windows,
    coalesce(i.n_draws, 0) as n_draws
from weeks as w
left join capacity as c using (device, week)
left join standby as sb using (device, week)
left join measured_cycles as mc using (device, week)
left join element as e using (device, week)
left join inlet as i using (device, week)
