-- int_error_days: one row per device per local day per error code and sub-code shown (errorCode
-- other than 0): how many samples showed the pair and the first and last of them. The findings
-- rule error_code reads the sub-codes from here (int_health_days keeps the per-code health
-- figures). Stored; rows keyed by local_day, depending on samples up to last_at.
-- Inputs: stg_status. Units: counts, UTC timestamps.
with

samples as (
    select * from stg_status
),

shown as (
    select device, local_day, received_at, error_code, coalesce(sub_error_code, 0) as sub_error_code
    from samples
    where coalesce(error_code, 0) <> 0
)

select
    device,
    local_day,
    error_code,
    sub_error_code,
    count(*) as samples,
    min(received_at) as first_at,
    max(received_at) as last_at
from shown
group by device, local_day, error_code, sub_error_code
