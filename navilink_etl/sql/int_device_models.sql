-- int_device_models: one row per device: int_device_loss plus cop_factor, which scales the
-- docs/metrics.md COP map (macro cop_map, 65-gal class) to the device: the median of measured COP /
-- map COP over measurable heat-pump-only cycles (1 without any).
-- Inputs: int_device_loss, int_cycles. Units: W/K, Wh/K.
with

loss as (
    select * from int_device_loss
),

cycles as (
    select * from int_cycles
),

measured as (
    select
        device,
        measured_heat_wh / compressor_wh as cop,
        cop_map(tank_hp_c, ambient_c) as map_cop
    from cycles
    where measurable and compressor_wh > 100 and element_wh = 0
)

select
    l.*,
    coalesce(median(m.cop / m.map_cop), 1.0) as cop_factor,
    count(m.cop) as measured_cycles
from loss as l
left join measured as m using (device)
group by all
