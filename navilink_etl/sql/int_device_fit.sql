-- int_device_fit: one row per device and scope: the device's whole history (week NULL: what
-- device_model shows) and each ISO week with data (Monday to Sunday, local days: what
-- device_model_history shows). One fit for both (docs/metrics.md 2.13): every reported state,
-- standby window, measured cycle, element day and flushing draw counts in its own week's scope and
-- in the all-time scope, and each parameter is aggregated per scope with the same method and error.
-- Per scope the capacity C is the all-time one of int_device_models (what every other mart uses)
-- or the week's own (the setpoint slope when the week saw two setpoints, else the median full
-- recovery / (setpoint - reference)); the measured cycles' COP map is read with the scope's C (the
-- device's all-time C in a week without its own). Errors as described in device_model; the
-- all-time inlet uses the flushing draws of the last 30 days before as_of (the endpoint of their
-- lowest lower-thermistor readings, docs/metrics.md 2.13). A week's parameter is
-- NULL without data for it; defaults are device_model's business. as_of: the scope's last sample.
-- Inputs: int_device_models, int_device_states, standby_loss, int_cycles, int_cycle_hp_map,
-- int_element_days, int_draw_inlet, draws, int_day_energy, settings. Units: Wh/K, W/K, W, degC.
with

models as (
    select * from int_device_models
),

state_rows as (
    select * from int_device_states
),

window_rows as (
    select * from standby_loss
    where energy_fit_s >= 7200 and ua_w_per_k > 0
),

cycle_rows as (
    select * from int_cycles
    where measurable and compressor_wh > 100 and element_wh = 0
),

hp_map as (
    select * from int_cycle_hp_map
),

element_days as (
    select * from int_element_days
),

draw_inlet as (
    select * from int_draw_inlet
),

draw_rows as (
    select * from draws
),

days as (
    select * from int_day_energy
),

settings as (
    select default_reference_c from settings
),

-- the reference temperature of the energy fields is assumed (not reported) on old firmware:
-- 1 K standard uncertainty; a reported one is exact. The fields count in 4 Wh steps and power in
-- 1 W steps (sd step / sqrt 12). The condenser wraps the bottom 5/12 of the tank. The compressor's
-- share subtracted from hybrid pieces is its last compressor-only power: 10 % uncertain. Element
-- power comes from element-only pieces once there are 10 minutes of them, else from hybrid ones.
assumptions as (
    select 1.0 as reference_sd_k, 4.0 / sqrt(12.0) as count_sd_wh, 1.0 / sqrt(12.0) as power_sd_w,
        5.0 / 12.0 as condenser_share, 0.1 as compressor_share_sd, 600.0 as element_only_min_s
),

-- the scopes: 'all' per device, and each ISO week with a sample (as 'YYYY-MM-DD', its Monday)
scope_of(all_time) as (
    values (true), (false)
),

device_as_of as (
    select device, max(last_sample_at) as as_of from days group by device
),

scopes as (
    select device, 'all' as scope, as_of from device_as_of
    union all
    select device, strftime(date_trunc('week', local_day), '%Y-%m-%d') as scope,
        max(last_sample_at) as as_of
    from days
    where last_sample_at is not null
    group by all
),

-- each observation in its week's scope and in the all-time scope
states as (
    select distinct
        st.device,
        case when x.all_time then 'all' else strftime(date_trunc('week', st.local_day), '%Y-%m-%d')
        end as scope,
        st.setpoint_c, st.full_recovery_wh, st.min_setpoint_c
    from state_rows as st
    cross join scope_of as x
),

windows as (
    select
        w.*,
        case when x.all_time then 'all' else strftime(date_trunc('week', w.local_day), '%Y-%m-%d')
        end as scope
    from window_rows as w
    cross join scope_of as x
),

cycles as (
    select
        c.*,
        case when x.all_time then 'all' else strftime(date_trunc('week', c.local_day), '%Y-%m-%d')
        end as scope
    from cycle_rows as c
    cross join scope_of as x
),

-- capacity per scope: the slope of full-recovery energy against setpoint, its regression error
-- (at least the count resolution's); else full recovery / (setpoint - reference) per reported
-- state, its error from their spread, the count's resolution and the assumed reference's 1 K
capacity_states as (
    select
        st.device,
        st.scope,
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
    group by st.device, st.scope
),

standby as (
    select
        device,
        scope,
        median(ua_w_per_k) as ua_w_per_k,
        1.2533 * stddev_samp(ua_w_per_k) / sqrt(count(*)) as ua_se,
        1.2533 * stddev_samp(energy_ua_w_per_k / k_per_h) / sqrt(count(*)) as capacity_fit_se,
        count(*) as n_standby_windows
    from windows
    group by device, scope
),

-- the scope's capacity, where it came from and its error; all time: int_device_models' (which
-- falls back on the standby windows' C / default); a week: its own states only
capacity as (
    select
        sc.device,
        sc.scope,
        case when sc.scope = 'all' then m.capacity_wh_per_k
             else coalesce(k.slope, k.reference) end as capacity_wh_per_k,
        case when sc.scope = 'all' then m.capacity_source
             when k.slope is not null then 'setpoint_change'
             when k.reference is not null then 'reference' end as capacity_source,
        m.capacity_wh_per_k as device_capacity_wh_per_k,
        k.slope_se,
        k.reference_se,
        sb.capacity_fit_se
    from scopes as sc
    left join models as m on sc.device = m.device
    left join capacity_states as k on sc.device = k.device and sc.scope = k.scope
    left join standby as sb on sc.device = sb.device and sc.scope = sb.scope
),

capacity_error as (
    select
        *,
        case capacity_source
            when 'setpoint_change' then slope_se
            when 'reference' then reference_se
            when 'standby_fit' then capacity_fit_se
        end as capacity_se
    from capacity
),

-- per measured heat-pump-only cycle, with C and with C one standard error higher (high: the
-- capacity's share of the error): the heat delivered, its standby loss taken at the tank mean from
-- the stored energy (reference + stored / C) rather than the thermistor mean int_cycles uses, and
-- compressor Wh x map COP with the map read at (mean + condenser zone) / 2, the condenser zone
-- being (mean - (1 - f) x upper) / f for the condenser share f (COP = a + b x temperature)
cycle_capacity as (
    select
        c.*,
        x.high,
        coalesce(ce.capacity_wh_per_k, ce.device_capacity_wh_per_k)
            + case when x.high then coalesce(ce.capacity_se, 0) else 0 end as c_wh_per_k
    from cycles as c
    join capacity_error as ce on c.device = ce.device and c.scope = ce.scope
    cross join (values (false), (true)) as x(high)
    where ce.device_capacity_wh_per_k is not null
),

cycle_ratios as (
    select
        c.device,
        c.scope,
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
        scope,
        count(*) filter (where not high) as n_cycles,
        median(ratio) filter (where not high) as cop_factor,
        sqrt((1.2533 * stddev_samp(ratio) filter (where not high)
              / sqrt(count(*) filter (where not high))) ^ 2
             + (median(ratio) filter (where high) - median(ratio) filter (where not high)) ^ 2)
            as cop_se
    from cycle_ratios
    group by device, scope
),

-- element-only pieces when the device has 10 minutes of them in all, else hybrid pieces
element_kind as (
    select e.device, sum(e.element_only_s) >= any_value(a.element_only_min_s) as element_only
    from element_days as e
    cross join assumptions as a
    group by e.device
),

element_obs as (
    select
        e.device,
        case when x.all_time then 'all' else strftime(date_trunc('week', e.local_day), '%Y-%m-%d')
        end as scope,
        case when k.element_only then e.element_only_s else e.hybrid_s end / 3600.0 as h,
        case when k.element_only then e.element_only_wh else e.hybrid_element_wh end as wh,
        case when k.element_only then 0.0 else e.hybrid_compressor_wh end as compressor_wh
    from element_days as e
    join element_kind as k using (device)
    cross join scope_of as x
    where case when k.element_only then e.element_only_s else e.hybrid_s end > 0
),

element_ratio as (
    select device, scope, sum(wh) / sum(h) as element_w, sum(compressor_wh) / sum(h) as compressor_w
    from element_obs
    group by device, scope
),

-- the ratio estimator's error over days, the reading's resolution, the compressor's share
element as (
    select
        o.device,
        o.scope,
        any_value(r.element_w) as element_w,
        sqrt(coalesce(sum((o.wh - o.h * r.element_w) ^ 2) / nullif(count(*) * (count(*) - 1), 0)
                      / avg(o.h) ^ 2, 0)
             + any_value(a.power_sd_w) ^ 2
             + (any_value(a.compressor_share_sd) * any_value(r.compressor_w)) ^ 2) as element_se
    from element_obs as o
    join element_ratio as r using (device, scope)
    cross join assumptions as a
    group by o.device, o.scope
),

-- draws that moved the lower thermistor by 10 K or more, away from gaps, outside Electric mode;
-- the all-time scope takes those of the last 30 days
flushing_draws as (
    select
        i.device,
        case when x.all_time then 'all' else strftime(date_trunc('week', d.local_day), '%Y-%m-%d')
        end as scope,
        i.lower_min_c
    from draw_rows as d
    join draw_inlet as i on d.device = i.device and d.draw_start = i.draw_start
    join device_as_of as o on i.device = o.device
    cross join scope_of as x
    where not i.at_gap and not i.electric_mode and i.lower_before_c - i.lower_min_c >= 10
        and (not x.all_time or d.draw_start >= o.as_of - interval 30 days)
),

flushing as (
    select
        *,
        row_number() over (partition by device, scope order by lower_min_c) as rank,
        count(*) over (partition by device, scope) as n
    from flushing_draws
),

-- the inlet is the lower end of the distribution of those lowest readings (none reads below the
-- inlet; mixing and heating during the draw add to each): the 6 lowest (at least 3) against their
-- rank, extrapolated to rank 1/2 (the endpoint under a flat density near it), its error the
-- extrapolation's (at least half the spacing of the readings)
inlet as (
    select
        device,
        scope,
        case when any_value(n) >= 3
             then regr_intercept(lower_min_c, rank) + 0.5 * regr_slope(lower_min_c, rank) end
            as inlet_c,
        case when any_value(n) >= 3
             then greatest(
                 sqrt(greatest(regr_syy(lower_min_c, rank)
                               - regr_sxy(lower_min_c, rank) ^ 2 / regr_sxx(lower_min_c, rank), 0)
                      / (count(*) - 2)
                      * (1.0 / count(*) + (0.5 - avg(rank)) ^ 2 / regr_sxx(lower_min_c, rank))),
                 regr_slope(lower_min_c, rank) / 2) end as inlet_se,
        any_value(n) as n_draws
    from flushing
    where rank <= 6
    group by device, scope
)

select
    sc.device,
    case when sc.scope <> 'all' then cast(sc.scope as date) end as week,
    sc.as_of,
    c.capacity_wh_per_k,
    c.capacity_se as capacity_wh_per_k_se,
    c.capacity_source,
    sb.ua_w_per_k,
    -- UA = C k: the capacity's relative error adds, unless C came from the same windows
    sb.ua_w_per_k * sqrt((sb.ua_se / sb.ua_w_per_k) ^ 2
        + coalesce((case c.capacity_source when 'setpoint_change' then c.slope_se
                                           when 'reference' then c.reference_se end
                    / c.capacity_wh_per_k) ^ 2, 0)) as ua_w_per_k_se,
    mc.cop_factor,
    mc.cop_se as cop_factor_se,
    e.element_w,
    e.element_se as element_w_se,
    i.inlet_c,
    i.inlet_se as inlet_c_se,
    coalesce(mc.n_cycles, 0) as n_cycles,
    coalesce(sb.n_standby_windows, 0) as n_standby_windows,
    coalesce(i.n_draws, 0) as n_draws
from scopes as sc
left join capacity_error as c on sc.device = c.device and sc.scope = c.scope
left join standby as sb on sc.device = sb.device and sc.scope = sb.scope
left join measured_cycles as mc on sc.device = mc.device and sc.scope = mc.scope
left join element as e on sc.device = e.device and sc.scope = e.scope
left join inlet as i on sc.device = i.device and sc.scope = i.scope
