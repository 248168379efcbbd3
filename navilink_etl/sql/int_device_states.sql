-- int_device_states: one row per device per local day per distinct (setpoint, full-recovery
-- energy, minimum setpoint) the device reported: what int_device_capacity fits, kept per day so
-- the fit is refreshed without reading raw samples. Stored, keyed by local_day.
-- Inputs: int_intervals. Units: degC, Wh.
select distinct device, local_day, setpoint_c, full_recovery_wh, min_setpoint_c
from int_intervals
