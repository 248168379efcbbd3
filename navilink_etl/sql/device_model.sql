-- device_model: one row per device: the current fit of the device's physical model (what the
-- what-if replays use), each parameter with its standard error (docs/metrics.md 2.13): the
-- all-time scope of int_device_fit, with the defaults where nothing was fitted.
-- capacity_wh_per_k and ua_w_per_k as int_device_models; the capacity's error from the setpoint
-- regression or the spread of the reported states plus the assumed reference's 1 K, the UA's the
-- median's over the standby windows (1.2533 x sd / sqrt(n)) combined with the capacity's (UA = C k).
-- cop_factor scales the COP map (macro cop_map) read at the heat pump's own temperature
-- (int_cycle_hp_map): the median of measured heat / (compressor Wh x map COP) over the measurable
-- heat-pump-only cycles, the cycle's standby loss taken at the tank mean from the stored energy;
-- its error the median's combined with the capacity's (which moves that mean). element_w is the
-- mean element power over element-only pieces (else hybrid ones, int_element_days), its error the
-- ratio estimator's over days with the reading's resolution and the compressor share's error
-- added. inlet_c is estimated from the draws of the last 30 days with data (int_device_fit). as_of
-- is the device's last sample. An error is NULL where nothing was fitted (a default) or one value
-- was; so is cop_factor's 1 and element_w's rated power.
-- Inputs: int_device_models, int_device_fit, settings. Units: Wh/K, W/K, W, degC.
with

models as (
    select * from int_device_models
),

fit as (
    select * from int_device_fit where week is null
),

settings as (
    select rated_element_w from settings
)

select
    m.device,
    f.as_of,
    m.capacity_wh_per_k,
    f.capacity_wh_per_k_se,
    m.ua_w_per_k,
    case when not m.ua_defaulted then f.ua_w_per_k_se end as ua_w_per_k_se,
    coalesce(f.cop_factor, 1.0) as cop_factor,
    f.cop_factor_se,
    coalesce(f.element_w, s.rated_element_w) as element_w,
    f.element_w_se,
    f.inlet_c,
    f.inlet_c_se,
    coalesce(f.n_cycles, 0) as n_cycles,
    coalesce(f.n_standby_windows, 0) as n_standby_windows,
    coalesce(f.n_draws, 0) as n_draws
from models as m
cross join settings as s
left join fit as f using (device)
