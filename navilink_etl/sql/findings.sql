-- findings: one row per device per rule that fires now (docs/metrics.md 8): when the heater needs
-- attention, with the evidence in numbers and what to do. Rules are judged at the device's last
-- sample (as_of); "recent" is the 7 days before it, the baseline the 28 days before those.
--   error_code           an error code shown in the last 30 days (error while still shown)
--   offline              a gap of 6 h or more, or poll coverage below 95 %, in the recent days
--   sensor_stuck         a tank thermistor flat (range <= 0.2 K) for 2 or more whole days while
--                        the other one or the stored energy moved
--   sensor_implausible   readings outside 0-95 degC in the recent days
--   cop_drop             measured heat-pump COP / the COP map at its tank and room temperature:
--                        every recent cycle (2 or more) at or below 85 % of the baseline's median
--                        (3 or more cycles; measured cycles are those without a draw)
--   element_share_rising element share of heating energy up 20 points or more (to 25 % or more)
--                        at the same DHW mode and setpoint and a room within 2 K, leaving out
--                        days with the room near the compressor's lock-out
--   short_cycling        6 or more compressor runs a day shorter than 10 min, over the recent days
--   setpoint_high        (info) 10 degF lower would have held every draw of the last 28 days:
--                        the standby loss it saves per year at the device's UA and the price
--   parameter_drift      a weekly fit (device_model_history) of UA (up), the COP factor, the
--                        element power or the capacity (down) beyond 3 standard errors and a
--                        practical size (15 %, 10 %, 5 %, 5 %) from the device's earlier weeks
--                        (2 to 8 of them); a COP drop cop_drop reports is not repeated
-- Inputs: int_health_days, int_error_days (sub-codes), heating_cycles, energy_daily, draws,
-- runouts, int_device_loss, device_model_history, settings. Units: degC, kWh, $, h.
with

health as (
    select * from int_health_days
),

error_days as (
    select * from int_error_days
),

cycles as (
    select * from heating_cycles
),

energy as (
    select * from energy_daily
),

draw_rows as (
    select * from draws
),

runout_rows as (
    select * from runouts
),

loss as (
    select * from int_device_loss
),

history as (
    select * from device_model_history
),

settings as (
    select
        timezone, poll_interval_s, price_per_kwh, inlet_c, delivery_c, wh_per_gal_degf, degf_per_k
    from settings
),

-- meanings of the codes the installation manual lists (docs/protocol.md 5.6)
error_meanings(code, meaning) as (
    values (96, 'upper element fault'), (97, 'lower element fault'), (326, 'dry fire'),
        (407, 'DHW temperature sensor'), (445, 'mixing valve'), (480, 'upper tank sensor'),
        (481, 'lower tank sensor'), (515, 'relay fault'), (517, 'DIP switch'), (593, 'panel key'),
        (594, 'EEPROM'), (595, 'power meter'), (596, 'Wi-Fi connection'),
        (598, 'real-time clock'), (615, 'feedback fault'), (781, 'CTA-2045 communication'),
        (798, 'shut-off valve fault'), (799, 'water leak detected'),
        (901, 'high-limit (ECO) fault'), (907, 'compressor power line'),
        (908, 'compressor operation'), (909, 'evaporator fan'), (910, 'discharge sensor'),
        (911, 'discharge too hot'), (912, 'suction sensor'), (913, 'suction too cold'),
        (914, 'evaporator sensor'), (915, 'discharge - suction difference abnormal'),
        (916, 'evaporator temperature abnormal'), (920, 'ambient sensor'),
        (940, 'refrigerant line blockage'), (990, 'condensate overflow')
),

as_of as (
    select device, max(last_at) as as_of, cast(timezone(any_value(s.timezone), max(last_at)) as date) as as_of_day
    from health
    cross join settings as s
    group by device
),

days as (
    -- per device and day, over all error codes
    select
        h.device, h.local_day, a.as_of, a.as_of_day,
        sum(h.samples) as samples,
        min(h.upper_min_c) as upper_min_c, max(h.upper_max_c) as upper_max_c,
        min(h.lower_min_c) as lower_min_c, max(h.lower_max_c) as lower_max_c,
        max(h.stored_max_wh) - min(h.stored_min_wh) as stored_range_wh,
        sum(h.implausible_samples) as implausible_samples,
        sum(h.compressor_starts) as compressor_starts,
        sum(h.compressor_s) as compressor_s,
        sum(h.short_runs) as short_runs,
        max(h.max_gap_s) as max_gap_s,
        arg_max(h.max_gap_start, [h.max_gap_s, epoch(h.max_gap_start)]) as max_gap_start,
        min(h.first_at) as first_at
    from health as h
    join as_of as a using (device)
    group by h.device, h.local_day, a.as_of, a.as_of_day
),

-- error codes ----------------------------------------------------------------------------------
error_subs as (
    -- the sub-codes (subErrorCode) shown with each code in the last 30 days, most samples first
    select device, error_code,
        string_agg(cast(sub_error_code as varchar), ', ' order by samples desc, sub_error_code)
            as sub_codes
    from (
        select e.device, e.error_code, e.sub_error_code, sum(e.samples) as samples
        from error_days as e
        join as_of as a using (device)
        where e.last_at >= a.as_of - interval 30 days
        group by all
    )
    group by all
),

errors as (
    select
        h.device,
        'error_code' as finding,
        case when max(h.last_at) >= any_value(a.as_of) - interval 1 hour then 'error'
             else 'warning' end as severity,
        min(h.first_at) as since,
        format('E{:03d} ({}) shown {} (sub-code {}; first {}, last {} UTC, {} samples){}',
               h.error_code, coalesce(any_value(m.meaning), 'meaning not known'),
               case when max(h.last_at) >= any_value(a.as_of) - interval 1 hour then 'now'
                    else 'and cleared' end,
               coalesce(any_value(x.sub_codes), '?'),
               strftime(min(h.first_at), '%Y-%m-%d %H:%M'),
               strftime(max(h.last_at), '%Y-%m-%d %H:%M'), sum(h.samples),
               format(', {:.1f} h', epoch(max(h.last_at) - min(h.first_at)) / 3600.0))
            as evidence,
        'Look the code up in the installation manual (E' || lpad(cast(h.error_code as varchar), 3, '0')
            || '); if it stays or comes back, call a Navien service technician.' as what_to_do
    from health as h
    join as_of as a using (device)
    left join error_meanings as m on m.code = h.error_code
    left join error_subs as x on x.device = h.device and x.error_code = h.error_code
    where h.error_code <> 0 and h.last_at >= a.as_of - interval 30 days
    group by h.device, h.error_code
),

-- offline and poll coverage --------------------------------------------------------------------
recent_days as (
    select * from days where local_day > as_of_day - 7
),

offline as (
    select
        device,
        'offline' as finding,
        'warning' as severity,
        arg_max(max_gap_start, [max_gap_s, epoch(max_gap_start)]) as since,
        format('no data for {:.1f} h from {} UTC (the longest gap of the last 7 days)',
               max(max_gap_s) / 3600.0,
               strftime(arg_max(max_gap_start, [max_gap_s, epoch(max_gap_start)]),
                        '%Y-%m-%d %H:%M')) as evidence,
        'Check the heater''s Wi-Fi (signal, router, power) and that the collector kept running.'
            as what_to_do
    from recent_days
    group by device
    having max(max_gap_s) >= 6 * 3600
),

coverage as (
    select
        e.device,
        'offline' as finding,
        'warning' as severity,
        timezone(any_value(s.timezone), cast(min(e.day) as timestamp)) as since,
        format('poll coverage {:.1f} % over the last {} whole days (below 95 %)',
               100 * avg(e.coverage), count(*)) as evidence,
        'Check the heater''s Wi-Fi and the collector; a polling interval the cloud throttles also '
            || 'loses samples.' as what_to_do
    from energy as e
    join as_of as a using (device)
    cross join settings as s
    -- whole days: not the day of as_of, nor the device's first day (both partial)
    where e.day > a.as_of_day - 8 and e.day < a.as_of_day
      and e.day > (select min(h.local_day) from health as h where h.device = e.device)
    group by e.device
    having avg(e.coverage) < 0.95 and e.device not in (select device from offline)
),

-- tank sensors ---------------------------------------------------------------------------------
sensor_days as (
    select device, local_day, as_of_day, 'upper' as sensor, upper_max_c - upper_min_c as range_k,
           greatest(lower_max_c - lower_min_c, 0) as other_k, stored_range_wh
    from days
    union all
    select device, local_day, as_of_day, 'lower', lower_max_c - lower_min_c,
           greatest(upper_max_c - upper_min_c, 0), stored_range_wh
    from days
),

flat_runs as (
    -- the latest run of flat whole days (the day of as_of is partial: left out)
    select
        device, sensor, local_day, range_k, other_k, stored_range_wh,
        sum(case when range_k <= 0.2 then 0 else 1 end)
            over (partition by device, sensor order by local_day desc) as broken
    from sensor_days
    where local_day < as_of_day
),

stuck as (
    select
        device,
        'sensor_stuck' as finding,
        'warning' as severity,
        timezone(any_value(s.timezone), cast(min(local_day) as timestamp)) as since,
        format('{} tank sensor flat for {} days (range {:.1f} K) while the {} moved {:.1f} K and '
               'the stored energy {:.0f} Wh', sensor, count(*), max(range_k),
               case sensor when 'upper' then 'lower sensor' else 'upper sensor' end,
               max(other_k), max(stored_range_wh)) as evidence,
        'A stuck thermistor misleads the controller and these figures; have the ' || sensor
            || ' tank sensor and its wiring checked.' as what_to_do
    from flat_runs
    cross join settings as s
    where broken = 0
    group by device, sensor
    having count(*) >= 2 and (max(other_k) >= 3 or max(stored_range_wh) >= 500)
),

implausible as (
    select
        device,
        'sensor_implausible' as finding,
        'warning' as severity,
        min(first_at) as since,
        format('{} samples with a tank reading outside 0-95 degC in the last 7 days (upper {:.1f} '
               'to {:.1f}, lower {:.1f} to {:.1f} degC)', sum(implausible_samples),
               min(upper_min_c), max(upper_max_c), min(lower_min_c), max(lower_max_c)) as evidence,
        'Have the tank sensors checked; readings outside physics are not water temperatures.'
            as what_to_do
    from recent_days
    group by device
    having sum(implausible_samples) > 0
),

-- heat-pump efficiency -------------------------------------------------------------------------
measured as (
    select
        c.device, c.cycle_start, c.cop, c.ambient_c,
        c.cop / nullif(cop_map(c.tank_avg_c, c.ambient_c), 0) as cop_ratio,
        case when c.cycle_start > a.as_of - interval 7 days then 'recent'
             when c.cycle_start > a.as_of - interval 35 days then 'baseline' end as period
    from cycles as c
    join as_of as a using (device)
    where c.method = 'measured' and c.source_mix = 'heat_pump' and c.cop is not null
      and c.compressor_s >= 1200 and not c.at_gap
),

cop_periods as (
    select
        device,
        median(cop_ratio) filter (where period = 'baseline') as base_ratio,
        median(cop_ratio) filter (where period = 'recent') as recent_ratio,
        max(cop_ratio) filter (where period = 'recent') as recent_max_ratio,
        median(cop) filter (where period = 'baseline') as base_cop,
        median(cop) filter (where period = 'recent') as recent_cop,
        avg(ambient_c) filter (where period = 'baseline') as base_room_c,
        avg(ambient_c) filter (where period = 'recent') as recent_room_c,
        count(*) filter (where period = 'baseline') as base_n,
        count(*) filter (where period = 'recent') as recent_n
    from measured
    group by device
),

cop_drop as (
    select
        p.device,
        'cop_drop' as finding,
        'warning' as severity,
        (select min(m.cycle_start) from measured as m
         where m.device = p.device and m.period = 'recent'
           and m.cop_ratio <= 0.85 * p.base_ratio) as since,
        format('heat-pump COP {:.2f} over {} recent cycles vs {:.2f} over {} cycles of the 4 weeks '
               'before: {:.0f} % lower at the same room and tank temperature (rooms {:.1f} vs '
               '{:.1f} degC)', p.recent_cop, p.recent_n, p.base_cop, p.base_n,
               100 * (1 - p.recent_ratio / p.base_ratio), p.recent_room_c, p.base_room_c)
            as evidence,
        'Clean the air filter; if the COP stays low, have the refrigerant circuit checked.'
            as what_to_do
    from cop_periods as p
    where p.base_n >= 3 and p.recent_n >= 2 and p.recent_max_ratio <= 0.85 * p.base_ratio
),

-- element share --------------------------------------------------------------------------------
cycle_context as (
    select
        c.device,
        case when c.cycle_start > a.as_of - interval 7 days then 'recent' else 'baseline' end
            as period,
        mode(c.dhw_mode) as dhw_mode, mode(c.setpoint_c) as setpoint_c, avg(c.ambient_c) as room_c
    from cycles as c
    join as_of as a using (device)
    where c.cycle_start > a.as_of - interval 35 days
    group by all
),

cold_days as (
    -- days when the room came within 2 K of the compressor's lock-out (37 degF, cop.HP_LOCKOUT_F):
    -- the elements then run by design, so such days are not compared
    select distinct device, local_day from cycles where ambient_c < (37 - 32) / 1.8 + 2
),

share as (
    select
        e.device,
        sum(e.element_wh) filter (where e.day > a.as_of_day - 8)
            / nullif(sum(e.element_wh + e.compressor_wh) filter (where e.day > a.as_of_day - 8), 0)
            as recent_share,
        sum(e.element_wh) filter (where e.day <= a.as_of_day - 8)
            / nullif(sum(e.element_wh + e.compressor_wh) filter (where e.day <= a.as_of_day - 8), 0)
            as base_share,
        count(*) filter (where e.day <= a.as_of_day - 8) as base_days,
        count(*) filter (where e.day > a.as_of_day - 8) as recent_days
    from energy as e
    join as_of as a using (device)
    where e.day > a.as_of_day - 36 and e.day < a.as_of_day
      and not exists (select 1 from cold_days as d where d.device = e.device and d.local_day = e.day)
    group by e.device
),

element_share as (
    select
        s.device,
        'element_share_rising' as finding,
        'warning' as severity,
        a.as_of - interval 7 days as since,
        format('element {:.0f} % of heating energy in the last 7 days vs {:.0f} % before, same '
               'mode ({}) and setpoint ({:.1f} degC), room {:.1f} vs {:.1f} degC',
               100 * s.recent_share, 100 * s.base_share, r.dhw_mode, r.setpoint_c, r.room_c,
               b.room_c) as evidence,
        'The heat pump is covering less: clean the air filter and check the unit''s error codes.'
            as what_to_do
    from share as s
    join as_of as a using (device)
    join cycle_context as r on r.device = s.device and r.period = 'recent'
    join cycle_context as b on b.device = s.device and b.period = 'baseline'
    where s.base_days >= 14 and s.recent_days >= 4 and s.recent_share >= 0.25 and s.recent_share >= s.base_share + 0.2
      and r.dhw_mode = b.dhw_mode and r.setpoint_c = b.setpoint_c
      and abs(r.room_c - b.room_c) <= 2
),

-- compressor short cycling ---------------------------------------------------------------------
short_cycling as (
    select
        device,
        'short_cycling' as finding,
        'warning' as severity,
        timezone(any_value(s.timezone), cast(min(local_day) as timestamp)) as since,
        format('{:.1f} compressor runs a day shorter than 10 min ({:.1f} starts a day, {:.1f} min '
               'per run on average) over the last 7 days', sum(short_runs) / count(*),
               sum(compressor_starts) / count(*),
               sum(compressor_s) / nullif(sum(compressor_starts), 0) / 60.0) as evidence,
        'Short runs wear the compressor: check the setpoint hysteresis, the airflow and the '
            || 'error codes, and have the unit serviced if it continues.' as what_to_do
    from recent_days
    cross join settings as s
    group by device
    having count(*) >= 3 and sum(short_runs) / count(*) >= 6
),

-- parameter drift (device_model_history) --------------------------------------------------------
-- per parameter: the direction that means trouble, the smallest change worth a visit (relative),
-- the least data a week's fit needs, what it is and what to do
drift_rules(parameter, direction, min_change, min_n, label, unit, what_to_do) as (
    values
        ('ua_w_per_k', 1, 0.15, 2, 'standby loss UA', ' W/K',
         'The tank loses heat faster than it did: check the relief valve''s discharge pipe for '
         || 'hot water dripping, any recirculation pump or loop (a timer, a check valve letting '
         || 'water thermosiphon) and the jacket and insulation for damp or damage.'),
        ('cop_factor', -1, 0.10, 3, 'heat-pump COP factor (x the map)', '',
         'The heat pump delivers less heat per kWh than it did: clean the air filter and the '
         || 'evaporator coil, check the condensate drain; if it stays low, have the refrigerant '
         || 'charge checked.'),
        ('element_w', -1, 0.05, 1, 'element power', ' W',
         'An element draws less power than it did: have the elements and their wiring checked '
         || '(a failing element, a loose or burnt connection, the supply voltage).'),
        ('capacity_wh_per_k', -1, 0.05, 1, 'usable tank capacity', ' Wh/K',
         'The tank holds less heat per degree than it did: sediment or scale at the bottom; flush '
         || 'the tank and have the anode checked.')
),

drift_weeks as (
    -- one row per device, parameter and week whose fit rests on enough data
    select h.device, h.week, h.as_of, r.parameter, r.direction, r.min_change, r.label, r.unit,
        r.what_to_do, p.value, p.se
    from history as h
    cross join lateral (values
        ('ua_w_per_k', h.ua_w_per_k, h.ua_w_per_k_se, h.n_standby_windows),
        ('cop_factor', h.cop_factor, h.cop_factor_se, h.n_cycles),
        ('element_w', h.element_w, h.element_w_se, 1),
        ('capacity_wh_per_k', h.capacity_wh_per_k, h.capacity_wh_per_k_se, 1)
    ) as p(parameter, value, se, n)
    join drift_rules as r on r.parameter = p.parameter
    where p.value is not null and p.se > 0 and p.n >= r.min_n
),

drift_latest as (
    -- the latest such week, if it reaches into the last 14 days before as_of (the current week
    -- may not have enough data yet)
    select w.*
    from drift_weeks as w
    join as_of as a using (device)
    where w.as_of > a.as_of - interval 14 days
    qualify row_number() over (partition by w.device, w.parameter order by w.week desc) = 1
),

drift_baseline as (
    -- the device's own earlier weeks (up to 8): their median, and its error from their scatter
    -- (robust: 1.4826 x the median absolute deviation, so one drifted week does not hide the
    -- next) or from their own errors, whichever is larger
    select
        l.device, l.parameter,
        median(w.value) as base_value,
        greatest(1.2533 * 1.4826 * mad(w.value), sqrt(avg(w.se ^ 2))) / sqrt(count(*)) as base_se,
        count(*) as base_weeks,
        min(w.week) as base_from,
        max(w.week) as base_to
    from drift_latest as l
    join drift_weeks as w
        on w.device = l.device and w.parameter = l.parameter and w.week < l.week
        and w.week >= l.week - interval 56 days
        -- capacity: only weeks fitted the same way (a week with two setpoints has the slope, its
        -- error ~100 x smaller than the assumed reference's; the two may differ by a few %)
        and (w.parameter <> 'capacity_wh_per_k' or w.se between l.se / 3 and l.se * 3)
    group by l.device, l.parameter
    having count(*) >= 2
),

drift as (
    select
        l.device,
        'parameter_drift' as finding,
        'warning' as severity,
        timezone(any_value(s.timezone), cast(l.week as timestamp)) as since,
        format('{} {}{} in the week of {} vs {} over {} earlier weeks ({} to {}): {:+.1f} %, '
               '{:.1f} standard errors (+- {} this week, +- {} before)', l.label,
               printf('%.4g', l.value), l.unit, strftime(l.week, '%Y-%m-%d'),
               printf('%.4g', b.base_value), b.base_weeks, strftime(b.base_from, '%Y-%m-%d'),
               strftime(b.base_to, '%Y-%m-%d'), 100 * (l.value / b.base_value - 1),
               abs(l.value - b.base_value) / sqrt(l.se ^ 2 + b.base_se ^ 2),
               printf('%.2g', l.se), printf('%.2g', b.base_se)) as evidence,
        any_value(l.what_to_do) as what_to_do
    from drift_latest as l
    join drift_baseline as b using (device, parameter)
    cross join settings as s
    where l.direction * (l.value - b.base_value) >= 3 * sqrt(l.se ^ 2 + b.base_se ^ 2)
      and l.direction * (l.value / b.base_value - 1) >= l.min_change
      -- a COP drop cop_drop already reports (its cycles, the last 7 days) is not said twice
      and not (l.parameter = 'cop_factor' and l.device in (select device from cop_drop))
    group by l.device, l.parameter, l.label, l.value, l.unit, l.week, l.se, b.base_value,
        b.base_weeks, b.base_from, b.base_to, b.base_se
),

-- setpoint -------------------------------------------------------------------------------------
latest_setpoint as (
    select device, arg_max(setpoint_c, cycle_start) as setpoint_c from cycles group by device
),

draw_need as (
    -- the largest draw of the last 28 days as gallons at the delivery temperature
    select
        d.device,
        count(*) as draws,
        max(d.energy_wh / (s.wh_per_gal_degf * s.degf_per_k * (s.delivery_c - s.inlet_c)))
            as largest_gal
    from draw_rows as d
    join as_of as a using (device)
    cross join settings as s
    where d.draw_start > a.as_of - interval 28 days
    group by d.device
),

setpoint_high as (
    select
        p.device,
        'setpoint_high' as finding,
        'info' as severity,
        a.as_of - interval 28 days as since,
        format('setpoint {:.1f} degC: 10 degF lower saves {:.0f} kWh (${:.2f}) of standby loss a '
               'year; it holds {:.0f} gal at {:.0f} degF, the largest of {} draws in 28 days took '
               '{:.0f} gal; {} run-outs at the current setpoint',
               p.setpoint_c, l.ua_w_per_k * 10 / s.degf_per_k * 8.76,
               l.ua_w_per_k * 10 / s.degf_per_k * 8.76 * s.price_per_kwh,
               l.capacity_wh_per_k / (s.wh_per_gal_degf * s.degf_per_k)
                   * (p.setpoint_c - 10 / s.degf_per_k - s.inlet_c) / (s.delivery_c - s.inlet_c),
               s.delivery_c * s.degf_per_k + 32, n.draws, n.largest_gal,
               (select count(*) from runout_rows as r
                where r.device = p.device and r.start > a.as_of - interval 28 days)) as evidence,
        'Lower the setpoint by 10 degF (the run-out risk above is from your own draws).'
            as what_to_do
    from latest_setpoint as p
    join as_of as a using (device)
    join draw_need as n using (device)
    join loss as l using (device)
    cross join settings as s
    where n.draws >= 20
      and p.setpoint_c - 10 / s.degf_per_k >= s.delivery_c + 5
      -- the largest draw fits in 70 % of what the lower setpoint holds (the rest: thermocline)
      and n.largest_gal <= 0.7 * l.capacity_wh_per_k / (s.wh_per_gal_degf * s.degf_per_k)
          * (p.setpoint_c - 10 / s.degf_per_k - s.inlet_c) / (s.delivery_c - s.inlet_c)
      and not exists (select 1 from runout_rows as r
                      where r.device = p.device and r.start > a.as_of - interval 28 days)
      and l.ua_w_per_k * 10 / s.degf_per_k * 8.76 * s.price_per_kwh >= 1.0
),

all_findings as (
    select * from errors
    union all select * from offline
    union all select * from coverage
    union all select * from stuck
    union all select * from implausible
    union all select * from cop_drop
    union all select * from element_share
    union all select * from short_cycling
    union all select * from setpoint_high
    union all select * from drift
)

select
    f.device,
    f.finding,
    f.severity,
    f.since,
    f.evidence,
    f.what_to_do,
    a.as_of
from all_findings as f
join as_of as a using (device)
