-- device_model: one row per device: the current fit of the device's physical model (what the
-- what-if replays use), each parameter with its standard error (docs/metrics.md 2.13).
-- capacity_wh_per_k and ua_w_per_k as int_device_models; the capacity's error from the setpoint
-- regression or the spread of the reported states plus the assumed reference's 1 K, the UA's the
-- median's over the standby windows (1.2533 x sd / sqrt(n)) combined with the capacity's (UA = C k).
-- cop_factor scales the COP map (macro cop_map) read at the heat pump's own temperature
-- (int_cycle_hp_map): the median of measured heat / (compressor Wh x map COP) over the measurable
-- heat-pump-only cycles, the cycle's standby loss taken at the tank mean from the stored energy;
-- its error the median's combined with the capacity's (which moves that mean). element_w is the mean element power over
-- element-only pieces (else hybrid ones, int_element_days), its error the ratio estimator's over
-- days with the reading's resolution and the compressor share's error added. inlet_c is the mean
-- lowest lower-thermistor reading of the lowest tenth of the draws that flushed it over the last 30
-- days with data (an upper bound; its error is statistical only). as_of is the device's last
-- sample. An error is NULL where nothing was fitted (a default) or one value was.
-- Inputs: int_device_models, int_device_states, standby_loss, int_cycles, int_cycle_hp_map,
-- int_element_days, int_draw_inlet, draws, int_day_energy, settings. Units: Wh/K, W/K, W, degC.
with

models as (
    select * from int_device_models
),

states as (
    select distinct device, setpoint_c, full_recovery_wh, min_setpoint_c from int_device_states
),

windows as (
    select * from standby_loss
    where energy_fit_s >= 7200 and ua_w_per_k > 0
),

cycles as (
    select * from int_cycles
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

draws as (
    select * from draws
),

days as (
    select * from int_day_energy
),

settings as (
    select default_reference_c, rated_element_w from settings
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

as_of as (
    select device, max(last_sample_at) as as_of from days group by device
),

-- capacity: the slope of full-recovery energy against setpoint, its regression error (at least
-- the count resolution's); else full recovery / (setpoint - reference) per reported state
capacity_slope as (
    select
        st.device,
        greatest(
            sqrt(greatest(regr_syy(st.full_recovery_wh, st.setpoint_c)
                          - regr_sxy(st.full_recovery_wh, st.setpoint_c) ^ 2
                            / regr_sxx(st.full_recovery_wh, st.setpoint_c), 0)
                 / nullif(regr_count(st.full_recovery_wh, st.setpoint_c)::bigint - 2, 0)
                 / regr_sxx(st.full_recovery_wh, st.setpoint_c)),
            any_value(a.count_sd_wh) * sqrt(2.0 / regr_sxx(st.full_recovery_wh, st.setpoint_c)))
            as se
    from states as st
    cross join assumptions as a
    group by st.device
    having max(st.setpoint_c) - min(st.setpoint_c) >= 1
),

capacity_reference as (
    select
        st.device,
        sqrt(coalesce(var_samp(st.full_recovery_wh / (st.setpoint_c - coalesce(st.min_setpoint_c,
                                                                                s.default_reference_c)))
                      / count(*), 0)
             + (avg(a.count_sd_wh / (st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c)))) ^ 2
             + (avg(case when st.min_setpoint_c is null
                         then a.reference_sd_k * st.full_recovery_wh
                              / (st.setpoint_c - s.default_reference_c) ^ 2
                         else 0 end)) ^ 2) as se
    from states as st
    cross join settings as s
    cross join assumptions as a
    where st.setpoint_c - coalesce(st.min_setpoint_c, s.default_reference_c) >= 10
    group by st.device
),

standby as (
    select
        device,
        count(*) as n_standby_windows,
        1.2533 * stddev_samp(ua_w_per_k) / sqrt(count(*)) as ua_se,
        1.2533 * stddev_samp(energy_ua_w_per_k / k_per_h) / sqrt(count(*)) as capacity_fit_se
    from windows
    group by device
),

capacity_error as (
    select
        m.device,
        case m.capacity_source
            when 'setpoint_change' then cs.se
            when 'reference' then cr.se
            when 'standby_fit' then sb.capacity_fit_se
        end as se
    from models as m
    left join capacity_slope as cs using (device)
    left join capacity_reference as cr using (device)
    left join standby as sb using (device)
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
        m.capacity_wh_per_k + case when x.high then coalesce(ce.se, 0) else 0 end as c_wh_per_k
    from cycles as c
    join models as m on c.device = m.device
    join capacity_error as ce on c.device = ce.device
    cross join (values (false), (true)) as x(high)
    where c.measurable and c.compressor_wh > 100 and c.element_wh = 0
),

cycle_ratios as (
    select
        c.device,
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
        count(*) filter (where not high) as n_cycles,
        median(ratio) filter (where not high) as cop_factor,
        sqrt((1.2533 * stddev_samp(ratio) filter (where not high)
              / sqrt(count(*) filter (where not high))) ^ 2
             + (median(ratio) filter (where high) - median(ratio) filter (where not high)) ^ 2)
            as cop_se
    from cycle_ratios
    group by device
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
        case when k.element_only then e.element_only_s else e.hybrid_s end / 3600.0 as h,
        case when k.element_only then e.element_only_wh else e.hybrid_element_wh end as wh,
        case when k.element_only then 0.0 else e.hybrid_compressor_wh end as compressor_wh
    from element_days as e
    join element_kind as k using (device)
    where case when k.element_only then e.element_only_s else e.hybrid_s end > 0
),

element_ratio as (
    select device, sum(wh) / sum(h) as element_w, sum(compressor_wh) / sum(h) as compressor_w
    from element_obs
    group by device
),

-- the ratio estimator's error over days, the reading's resolution, the compressor's share
element as (
    select
        o.device,
        any_value(r.element_w) as element_w,
        sqrt(coalesce(sum((o.wh - o.h * r.element_w) ^ 2) / nullif(count(*) * (count(*) - 1), 0)
                      / avg(o.h) ^ 2, 0)
             + any_value(a.power_sd_w) ^ 2
             + (any_value(a.compressor_share_sd) * any_value(r.compressor_w)) ^ 2) as element_se
    from element_obs as o
    join element_ratio as r using (device)
    cross join assumptions as a
    group by o.device
),

-- draws that moved the lower thermistor by 10 K or more, away from gaps, ranked by lowest reading
flushing as (
    select
        i.device,
        d.draw_start,
        i.lower_min_c,
        row_number() over (partition by i.device order by i.lower_min_c) as rank,
        count(*) over (partition by i.device) as n
    from draws as d
    join draw_inlet as i on d.device = i.device and d.draw_start = i.draw_start
    join as_of as o on i.device = o.device
    where not i.at_gap and not i.electric_mode and i.lower_before_c - i.lower_min_c >= 10
        and d.draw_start >= o.as_of - interval 30 days
),

-- the mean of the lowest tenth (at least 3) of their lowest readings: the least warmed by mixing
-- and by heating during the draw
inlet as (
    select
        device,
        avg(lower_min_c) as inlet_c,
        stddev_samp(lower_min_c) / sqrt(count(*)) as inlet_se,
        any_value(n) as n_draws
    from flushing
    where rank <= greatest(3, ceil(n / 10.0))
    group by device
)

select
    m.device,
    o.as_of,
    m.capacity_wh_per_k,
    ce.se as capacity_wh_per_k_se,
    m.ua_w_per_k,
    case when not m.ua_defaulted
         then m.ua_w_per_k * sqrt((sb.ua_se / m.ua_w_per_k) ^ 2 + coalesce(
             (case m.capacity_source when 'setpoint_change' then cs.se
                                     when 'reference' then cr.se end / m.capacity_wh_per_k) ^ 2, 0))
    end as ua_w_per_k_se,
    coalesce(mc.cop_factor, 1.0) as cop_factor,
    mc.cop_se as cop_factor_se,
    coalesce(e.element_w, s.rated_element_w) as element_w,
    e.element_se as element_w_se,
    i.inlet_c,
    i.inlet_se as inlet_c_se,
    coalesce(mc.n_cycles, 0) as n_cycles,
    coalesce(sb.n_standby_windows, 0) as n_standby_windows,
    coalesce(i.n_draws, 0) as n_draws
from models as m
cross join settings as s
left join as_of as o using (device)
left join capacity_slope as cs using (device)
left join capacity_reference as cr using (device)
left join capacity_error as ce using (device)
left join standby as sb using (device)
left join measured_cycles as mc using (device)
left join element as e using (device)
left join inlet as i using (device)
