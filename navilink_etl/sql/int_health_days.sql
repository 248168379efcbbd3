-- int_health_days: one row per device per local day per error code shown (0 = none): what the
-- findings rules need from the raw samples, in additive form. Per group: samples, first and last
-- sample, the thermistors' and the stored energy's range, implausible readings (outside 0-95
-- degC), compressor starts and seconds, compressor runs shorter than 10 min (by the day and
-- code where they start), and the longest gap from one of its samples to the next.
-- Stored; rows keyed by local_day, depending on samples up to last_next_at.
-- Inputs: stg_status, settings. Units: s, degC, Wh.
with

samples as (
    select * from stg_status
),

settings as (
    select gap_cap_s from settings
),

sequenced as (
    select
        x.device, x.local_day, x.received_at, x.tank_upper_c, x.tank_lower_c, x.stored_wh,
        x.compressor_on,
        coalesce(x.error_code, 0) as error_code,
        lag(x.compressor_on) over w as prev_compressor_on,
        lead(x.received_at) over w as next_at
    from samples as x
    window w as (partition by x.device order by x.received_at)
),

-- compressor runs seen from their start to the first sample without the compressor: the samples
-- that start a run, and those that end one (the first without the compressor after one with it or
-- unknown); in time order, the next of the latter after a start ends its run
run_edges as (
    select
        q.device, q.local_day, q.error_code, q.received_at, q.compressor_on
    from sequenced as q
    where (q.compressor_on and not coalesce(q.prev_compressor_on, true))
       or (not q.compressor_on and q.prev_compressor_on is distinct from false)
),

runs as (
    select
        e.device,
        e.local_day,
        e.error_code,
        e.received_at as run_start,
        lead(e.received_at) over (partition by e.device order by e.received_at) as run_end,
        e.compressor_on as run_starts
    from run_edges as e
    qualify run_starts
),

short_runs as (
    select device, local_day, error_code, count(*) as short_runs
    from runs
    where run_start is not null and run_end is not null and run_end - run_start < interval 10 minutes
    group by all
)

select
    q.device,
    q.local_day,
    q.error_code,
    count(*) as samples,
    min(q.received_at) as first_at,
    max(q.received_at) as last_at,
    coalesce(max(q.next_at), max(q.received_at)) as last_next_at,
    min(q.tank_upper_c) as upper_min_c,
    max(q.tank_upper_c) as upper_max_c,
    min(q.tank_lower_c) as lower_min_c,
    max(q.tank_lower_c) as lower_max_c,
    min(q.stored_wh) as stored_min_wh,
    max(q.stored_wh) as stored_max_wh,
    count(*) filter (where q.tank_upper_c not between 0 and 95
                        or q.tank_lower_c not between 0 and 95) as implausible_samples,
    count(*) filter (where q.compressor_on and not coalesce(q.prev_compressor_on, true))
        as compressor_starts,
    coalesce(sum(least(epoch(q.next_at - q.received_at), s.gap_cap_s))
        filter (where q.compressor_on), 0) as compressor_s,
    coalesce(max(epoch(q.next_at - q.received_at)), 0) as max_gap_s,
    -- the latest of equal longest gaps (deterministic)
    arg_max(q.received_at, [epoch(q.next_at - q.received_at), epoch(q.received_at)])
        as max_gap_start,
    coalesce(any_value(r.short_runs), 0) as short_runs
from sequenced as q
cross join settings as s
left join short_runs as r using (device, local_day, error_code)
group by q.device, q.local_day, q.error_code
