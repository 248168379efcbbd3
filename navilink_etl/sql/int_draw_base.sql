-- int_draw_base: one row per device per hot-water draw (a run of samples with dhwUse on), with
-- what the draw's energy needs before any device-level fit (draws applies the COP factor and the
-- UA). The window runs from the sample before the draw to the sample after it. Heat added
-- meanwhile is kept as element Wh plus compressor Wh x the COP map (comp_map_wh, macro cop_map),
-- standby loss as integral(T_tank - T_room) dt (excess_kh). The outlet is estimated as the hottest
-- upper-thermistor reading of the last 3 h, less 0.5 K per hour since (the top of a stratified
-- tank stays hot while the thermocline passes the thermistor). Stored; rows are keyed by the local
-- day the draw starts (local_day) and depend on samples up to draw_end.
-- Inputs: int_intervals (its draw_seq identifies the draws), settings. Units: s, Wh, degC, K*h.
with

pieces as (
    select * from int_intervals
),

settings as (
    select timezone from settings
),

valued as (
    select
        p.device, p.interval_start, p.interval_end, p.drawing, p.draw_seq, p.stored_wh,
        p.end_stored_wh, p.energy_to_setpoint_wh, p.tank_upper_c, p.heating_on, p.capped,
        -- NULL together when the COP map has no value (as element + compressor x COP would be)
        case when cop_map(p.tank_mean_c, p.ambient_c) is not null then p.element_wh end
            as heat_element_wh,
        p.compressor_wh * cop_map(p.tank_mean_c, p.ambient_c) as comp_map_wh,
        (p.tank_mean_c - p.ambient_c) * p.duration_s / 3600.0 as excess_kh
    from pieces as p
),

marked as (
    select
        v.*,
        lag(v.stored_wh) over w as prev_stored_wh,
        lag(v.energy_to_setpoint_wh) over w as prev_energy_to_setpoint_wh,
        lag(v.interval_start) over w as prev_start,
        lag(v.heat_element_wh) over w as prev_heat_element_wh,
        lag(v.comp_map_wh) over w as prev_comp_map_wh,
        lag(v.excess_kh) over w as prev_excess_kh,
        lag(v.heating_on) over w as prev_heating_on,
        lag(v.capped) over w as prev_capped
    from valued as v
    window w as (partition by v.device order by v.interval_start)
),

aggregated as (
    select
        device,
        draw_seq,
        min(interval_start) as draw_start,
        max(interval_end) as draw_end,
        arg_min(prev_start, interval_start) as window_start,
        arg_min(prev_stored_wh, interval_start) as stored_before_wh,
        arg_min(prev_energy_to_setpoint_wh, interval_start) as energy_to_setpoint_before_wh,
        arg_max(end_stored_wh, interval_start) as stored_after_wh,
        arg_min_null(tank_upper_c, interval_start) as outlet_c,  -- the hottest of 3 h: below
        sum(heat_element_wh) + coalesce(arg_min(prev_heat_element_wh, interval_start), 0)
            as heat_element_wh,
        sum(comp_map_wh) + coalesce(arg_min(prev_comp_map_wh, interval_start), 0) as comp_map_wh,
        sum(excess_kh) + coalesce(arg_min(prev_excess_kh, interval_start), 0) as excess_kh,
        bool_or(heating_on) or coalesce(arg_min(prev_heating_on, interval_start), false)
            as heating_overlap,
        bool_or(capped) or coalesce(arg_min(prev_capped, interval_start), true) as at_gap
    from marked
    where drawing
    group by device, draw_seq
),

-- the top of the tank keeps the hottest water the upper thermistor saw, cooling slowly; after a
-- large draw the thermocline passes that thermistor while the outlet stays hot: the outlet at the
-- draw's start is the hottest upper reading of the 3 h up to it (pieces starting in
-- [start - 3 h, start]), less 0.5 K per hour since. Found by 10-minute bucket (hash joins): the
-- maximum of each bucket wholly inside the 3 h, and the pieces of the two buckets at its ends.
-- NULL when the upper thermistor read nothing in those 3 h.
piece_buckets as (
    select
        device, interval_start,
        tank_upper_c + epoch(interval_start) / 3600.0 * 0.5 as upper_rank,
        cast(floor(epoch(interval_start) / 600) as bigint) as bucket
    from valued
),

bucket_maxima as (
    select device, bucket, max(upper_rank) as upper_rank
    from piece_buckets
    group by device, bucket
),

draw_buckets as (
    select
        *,
        unnest(range(first_bucket, last_bucket + 1)) as bucket
    from (
        select
            device, draw_seq, draw_start,
            cast(floor(epoch(draw_start - interval 3 hours) / 600) as bigint) as first_bucket,
            cast(floor(epoch(draw_start) / 600) as bigint) as last_bucket
        from aggregated
    )
),

outlets as (
    select device, draw_seq, max(upper_rank) as upper_rank_max
    from (
        select h.device, h.draw_seq, m.upper_rank
        from draw_buckets as h
        join bucket_maxima as m on m.device = h.device and m.bucket = h.bucket
        where h.bucket > h.first_bucket and h.bucket < h.last_bucket
        union all
        select h.device, h.draw_seq, p.upper_rank
        from draw_buckets as h
        join piece_buckets as p
            on p.device = h.device and p.bucket = h.bucket
            and p.interval_start between h.draw_start - interval 3 hours and h.draw_start
        where h.bucket = h.first_bucket or h.bucket = h.last_bucket
    )
    group by device, draw_seq
)

select
    a.* exclude (draw_seq) replace (
        greatest(a.outlet_c, o.upper_rank_max - epoch(a.draw_start) / 3600.0 * 0.5) as outlet_c),
    cast(timezone(s.timezone, a.draw_start) as date) as local_day
from aggregated as a
left join outlets as o using (device, draw_seq)
cross join settings as s
