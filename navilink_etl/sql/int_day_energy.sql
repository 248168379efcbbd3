-- int_day_energy: one row per device per local day with pieces or gaps: electricity by source
-- integrated from the pieces, observed seconds, samples, gap seconds (int_gaps) and the day's cost
-- under settings.tariff (int_energy_slots; priced_wh is the energy a price covered; element_cost
-- the element's part). Stored, keyed by local_day; covered_s is NULL on a day with gaps only (an outage). first_ / last_sample_at
-- bound the day's samples (a refresh finds where new samples join the stored ones).
-- Inputs: int_intervals, int_gaps, int_energy_slots. Units: Wh, s, $.
with

pieces as (
    select * from int_intervals
),

gaps as (
    select * from int_gaps
),

slots as (
    select * from int_energy_slots
),

integrated as (
    select
        device,
        local_day,
        sum(compressor_wh) as compressor_wh,
        sum(element_wh) as element_wh,
        sum(standby_wh) as standby_wh,
        sum(total_wh) as total_wh,
        sum(duration_s) as covered_s,
        sum(duration_s) filter (where compressor_on) as compressor_s,
        sum(duration_s) filter (where element_on) as element_s,
        count(*) filter (where interval_start = sample_at) as samples,
        min(sample_at) filter (where interval_start = sample_at) as first_sample_at,
        max(sample_at) filter (where interval_start = sample_at) as last_sample_at
    from pieces
    group by device, local_day
),

gap_days as (
    select device, local_day, sum(gap_s) as gap_s
    from gaps
    group by device, local_day
),

costs as (
    select
        device,
        local_day,
        sum(cost) as cost,
        sum(element_cost) as element_cost,
        sum(total_wh) filter (where price_per_kwh is not null) as priced_wh
    from slots
    group by device, local_day
)

select
    coalesce(i.device, g.device) as device,
    coalesce(i.local_day, g.local_day) as local_day,
    i.* exclude (device, local_day),
    coalesce(g.gap_s, 0) as gap_s,
    c.cost,
    c.element_cost,
    c.priced_wh
from integrated as i
full join gap_days as g on g.device = i.device and g.local_day = i.local_day
left join costs as c on c.device = i.device and c.local_day = i.local_day
