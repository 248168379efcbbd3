-- hot_water: one row per device per status sample: the hot water left in the tank, as gallons at
-- the delivery temperature mixed at the tap, when full, and the minutes to full at the heat
-- source running now (docs/metrics.md 7; computed in int_hot_water). Stored, keyed by local_day,
-- so reports and plain clients read it without the raw samples.
-- Inputs: int_hot_water. Units: degC, gal, W, min.
with

samples as (
    select * from int_hot_water
)

select
    device,
    received_at,
    local_day,
    setpoint_c,
    outlet_c,
    inlet_c,
    delivery_c,
    gallons_available,
    gallons_full,
    drawing,
    heating_w,
    minutes_to_full
from samples
