-- device_model_history: one row per device per ISO week (Monday to Sunday, local days) with data:
-- the device_model fit over that week's own standby windows, measured cycles, element pieces,
-- reported states and flushing draws (the week scopes of int_device_fit), so a parameter that
-- drifts shows week by week. Same methods and errors as device_model (docs/metrics.md 2.13); a
-- parameter is NULL in a week without data for it (never a default). capacity_wh_per_k: the
-- week's setpoint slope when it saw two setpoints, else the median full recovery / (setpoint -
-- reference); the COP map is read with it (the device's current capacity when the week has none).
-- inlet_c: the week's flushing draws. as_of is the week's last sample. The findings rule
-- parameter_drift reads it.
-- Inputs: int_device_fit. Units: Wh/K, W/K, W, degC.
with

fit as (
    select * from int_device_fit where week is not null
)

select
    device, week, as_of, capacity_wh_per_k, capacity_wh_per_k_se, ua_w_per_k, ua_w_per_k_se,
    cop_factor, cop_factor_se, element_w, element_w_se, inlet_c, inlet_c_se, n_cycles,
    n_standby_windows, n_draws
from fit
