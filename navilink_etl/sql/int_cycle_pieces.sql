-- int_cycle_pieces: one row per device per piece (int_intervals) that lies inside a heating cycle,
-- tagged with its cycle. A cycle runs from the first to the last piece with a heat source on
-- (compressor or element) within one unbroken run of "active" pieces (a heat source on, or
-- heating demand, operationBusy, set: the compressor's hold and pre-run stay inside the cycle).
-- A long gap (missing time beyond the gap cap, int_intervals.segment_id) ends a run.
-- Inputs: int_intervals. Units: s.
with

pieces as materialized (
    select * from int_intervals
),

flagged as (
    select
        device,
        interval_start,
        interval_end,
        heating_on,
        heating_on or heating_demand as active,
        segment_id,
        lag(heating_on or heating_demand) over w as prev_active,
        lag(segment_id) over w as prev_segment
    from pieces
    window w as (partition by device order by interval_start)
),

numbered as (
    select
        *,
        sum(case when active and (not coalesce(prev_active, false)
                                  or prev_segment <> segment_id) then 1 else 0 end)
            over (partition by device order by interval_start
                  rows between unbounded preceding and current row) as run_seq
    from flagged
),

bounds as (
    select
        device,
        run_seq,
        min(interval_start) filter (where heating_on) as cycle_start,
        max(interval_end) filter (where heating_on) as cycle_end
    from numbered
    where active
    group by device, run_seq
    having bool_or(heating_on)
),

numbered_bounds as (
    select
        *,
        row_number() over (partition by device order by cycle_start) as cycle_seq
    from bounds
),

-- every piece of a cycle is active (a cycle lies inside one run of active pieces)
members as (
    select n.device, n.interval_start, b.cycle_seq, b.cycle_start, b.cycle_end
    from numbered as n
    join numbered_bounds as b on n.device = b.device and n.run_seq = b.run_seq
    where n.active and n.interval_start >= b.cycle_start and n.interval_start < b.cycle_end
)

select p.*, m.cycle_seq, m.cycle_start, m.cycle_end
from pieces as p
join members as m on p.device = m.device and p.interval_start = m.interval_start
