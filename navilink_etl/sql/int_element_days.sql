-- int_element_days: one row per device per local day with an element on: what the element power
-- fit (device_model) needs from the raw pieces. Only pieces whose power reading was aligned from
-- the next message with a class matching the relay flags (power_source 'next'; never the rated
-- fallback). Element-only pieces (compressor off) give the element's power directly (the 1 W
-- controls floor already taken off); hybrid pieces (compressor on too) give it after the
-- compressor's share (its last compressor-only power, int_intervals), kept apart as
-- hybrid_compressor_wh. Stored, keyed by local_day.
-- Inputs: int_intervals. Units: s, Wh.
with

pieces as (
    select * from int_intervals
),

element_pieces as (
    select device, local_day, compressor_on, duration_s, element_wh, compressor_wh
    from pieces
    where element_on and power_source = 'next' and duration_s > 0
)

select
    device,
    local_day,
    coalesce(sum(duration_s) filter (where not compressor_on), 0) as element_only_s,
    coalesce(sum(element_wh) filter (where not compressor_on), 0) as element_only_wh,
    coalesce(sum(duration_s) filter (where compressor_on), 0) as hybrid_s,
    coalesce(sum(element_wh) filter (where compressor_on), 0) as hybrid_element_wh,
    coalesce(sum(compressor_wh) filter (where compressor_on), 0) as hybrid_compressor_wh
from element_pieces
group by device, local_day
