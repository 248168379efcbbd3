-- int_cycle_hp_map: one row per device per heating cycle: what reading the COP map at the heat
-- pump's own temperature and the standby loss at the true tank mean need, in additive form, before
-- any device-level fit (device_model applies the tank capacity C). The map (macro cop_map) is
-- linear in the tank temperature T at a given room temperature: COP = a + b T (T in degC). It is
-- read halfway between the condenser zone (the bottom ~5/12 of the tank) and the whole-tank mean
-- (docs/metrics.md 3); neither is a thermistor, so device_model estimates both: the mean from the
-- stored-energy figure (reference + stored_wh / C) and the condenser zone from the energy left once
-- the water above it is taken at the upper thermistor's temperature. Per cycle this keeps sums
-- over compressor pieces of compressor Wh x a, x b, x b x reference, x b x stored_wh and x b x
-- upper temperature, and over all its pieces the standby integral of (reference - room) and of
-- stored_wh (divided by C it gives the integral of tank mean - room; the thermistor mean of
-- int_cycles overstates a stratified tank's). Stored; rows are keyed by the local day the cycle
-- starts and depend on samples up to cycle_end.
-- Inputs: int_cycle_pieces, settings. Units: Wh, degC, K*h (sums of Wh x degC, Wh x Wh, Wh*h).
with

pieces as (
    select * from int_cycle_pieces
),

settings as (
    select timezone, default_reference_c from settings
),

linear as (
    select
        p.device,
        p.cycle_start,
        p.cycle_end,
        p.duration_s,
        p.ambient_c,
        p.compressor_on and p.compressor_wh > 0 as compressor_running,
        p.compressor_wh,
        cop_map(0.0, p.ambient_c) as map_a,
        cop_map(1.0, p.ambient_c) - cop_map(0.0, p.ambient_c) as map_b,
        coalesce(p.min_setpoint_c, s.default_reference_c) as reference_c,
        p.stored_wh,
        p.tank_upper_c
    from pieces as p
    cross join settings as s
)

select
    l.device,
    l.cycle_start,
    max(l.cycle_end) as cycle_end,
    cast(timezone(any_value(s.timezone), l.cycle_start) as date) as local_day,
    coalesce(sum(l.compressor_wh) filter (where l.compressor_running), 0) as compressor_wh,
    coalesce(sum(l.compressor_wh * l.map_a) filter (where l.compressor_running), 0) as map_a_wh,
    coalesce(sum(l.compressor_wh * l.map_b) filter (where l.compressor_running), 0) as map_b_wh,
    coalesce(sum(l.compressor_wh * l.map_b * l.reference_c) filter (where l.compressor_running), 0)
        as map_b_reference_wh,
    coalesce(sum(l.compressor_wh * l.map_b * l.stored_wh) filter (where l.compressor_running), 0)
        as map_b_stored_wh,
    coalesce(sum(l.compressor_wh * l.map_b * l.tank_upper_c) filter (where l.compressor_running), 0)
        as map_b_upper_wh,
    sum((l.reference_c - l.ambient_c) * l.duration_s) / 3600.0 as excess_reference_kh,
    sum(l.stored_wh * l.duration_s) / 3600.0 as stored_wh_h
from linear as l
cross join settings as s
group by l.device, l.cycle_start
