-- int_gaps: one row per device per local day per gap: time between samples beyond the gap cap
-- (never integrated), split at local midnight.
-- Inputs: int_intervals (capped pieces end where a gap starts), settings. Units: s.
with

pieces as (
    select * from int_intervals
),

settings as (
    select timezone from settings
),

gaps as (
    select device, max(interval_end) as gap_start, any_value(next_at) as gap_end
    from pieces
    where capped
    group by device, sample_at
),

days as (
    select
        g.device,
        g.gap_start,
        g.gap_end,
        unnest(generate_series(
            cast(timezone(s.timezone, g.gap_start) as date),
            cast(timezone(s.timezone, g.gap_end) as date),
            interval 1 day)) as day_ts
    from gaps as g
    cross join settings as s
    where g.gap_end > g.gap_start
),

bounded as (
    select
        d.device,
        cast(d.day_ts as date) as local_day,
        greatest(d.gap_start, timezone(s.timezone, cast(d.day_ts as timestamp))) as gap_start,
        least(d.gap_end, timezone(s.timezone, cast(d.day_ts as timestamp) + interval 1 day))
            as gap_end
    from days as d
    cross join settings as s
)

select device, local_day, gap_start, gap_end, epoch(gap_end - gap_start) as gap_s
from bounded
where gap_end > gap_start
