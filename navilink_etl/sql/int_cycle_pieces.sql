-- int_cycle_pieces: one row per device per piece (int_intervals) that lies inside a heating cycle,
-- tagged with its cycle. A cycle runs from the first to the last piece with a heat source on
-- (compressor or element) within one unbroken run of "active" pieces (a heat source on, or
-- heating demand, operationBusy, set: the compressor's hold and pre-run stay inside the cycle).
-- A long gap (missing time beyond the gap cap, int_intervals.segment_id) ends a run; the runs are
-- int_intervals.active_run.
-- Inputs: int_intervals. Units: s.
with

pieces as (
    select * from int_intervals
),

active as (
    select * from pieces where heating_on or heating_demand
),

bounds as (
    select
        device,
        active_run,
        min(interval_start) filter (where heating_on) as cycle_start,
        max(interval_end) filter (where heating_on) as cycle_end
    from active
    group by device, active_run
    having bool_or(heating_on)
),

numbered_bounds as (
    select
        *,
        row_number() over (partition by device order by cycle_start) as cycle_seq
    from bounds
)

-- every piece of a cycle is active (a cycle lies inside one run of active pieces)
select p.* exclude (active_run), b.cycle_seq, b.cycle_start, b.cycle_end
from active as p
join numbered_bounds as b on p.device = b.device and p.active_run = b.active_run
where p.interval_start >= b.cycle_start and p.interval_start < b.cycle_end
