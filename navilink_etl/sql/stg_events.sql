-- stg_events: one row per collector event (polls missed, offline, reconnects, faults).
-- Inputs: src_events, settings (timezone). Units: s; local_day in settings.timezone.
with

source as (
    select * from src_events
),

settings as (
    select timezone from settings
)

select
    e.at,
    cast(timezone(s.timezone, e.at) as date) as local_day,
    e.device,
    e.kind,
    e.severity,
    e.detail,
    e.duration_s
from source as e
cross join settings as s
