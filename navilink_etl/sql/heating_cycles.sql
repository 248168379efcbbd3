-- heating_cycles: one row per device per heating cycle (int_cycle_pieces: first to last piece
-- with a heat source on within one run of heating demand; at_gap when a long gap borders it).
-- Heat delivered (docs/metrics.md 2): where the cycle is measurable (int_cycles: no draw, no gap,
-- valid stored-energy figures) heat_out_wh = change in the device's stored energy + UA x
-- integral(T - T_room) dt (method 'measured'); otherwise element Wh + compressor Wh x the device's
-- fitted COP map (method 'modelled'). cop = (heat_out_wh - element_wh) / compressor_wh.
-- Trigger, first that applies: anti_legionella (flag during the cycle), freeze_protection (lower
-- tank <= 7 degC at start), setpoint_raise (setpoint above the previous cycle's), mode_change (DHW
-- mode changed within settings.draw_context_s before the start), draw (a draw within that time),
-- standby_loss.
-- cycle_id numbers the device's cycles 1, 2, ... by start.
-- Inputs: int_cycles, int_device_models, mode_cycles, settings. Units: s, Wh, degC, W/K.
with

cycles as (
    select * from int_cycles
),

models as (
    select * from int_device_models
),

mode_starts as (
    select device, run_start from mode_cycles where mode_kind = 'dhw_mode'
),

settings as (
    select draw_context_s from settings
),

with_context as (
    select
        c.*,
        lag(c.setpoint_end_c) over (partition by c.device order by c.cycle_start)
            as previous_setpoint_c,
        exists (
            select 1 from mode_starts as m
            where m.device = c.device
              and m.run_start <= c.cycle_start
              and m.run_start > c.cycle_start - to_microseconds(
                  cast(s.draw_context_s * 1e6 as bigint))
              and m.run_start > (select min(run_start) from mode_starts as f
                                 where f.device = c.device)
        ) as mode_changed
    from cycles as c
    cross join settings as s
),

heat as (
    select
        w.*,
        m.cop_factor * cop_map(coalesce(w.tank_hp_c, w.tank_avg_c), w.ambient_c) as model_cop,
        case when w.measurable then w.measured_heat_wh
             else w.element_wh + w.compressor_wh * m.cop_factor
                  * cop_map(coalesce(w.tank_hp_c, w.tank_avg_c), w.ambient_c)
        end as heat_out_wh
    from with_context as w
    join models as m using (device)
)

select
    h.device,
    row_number() over (partition by h.device order by h.cycle_start) as cycle_id,
    h.cycle_start,
    h.cycle_end,
    h.local_day,
    h.duration_s,
    coalesce(h.compressor_s, 0) as compressor_s,
    coalesce(h.element_s, 0) as element_s,
    case when h.compressor_s > 0 and h.element_s > 0 then 'hybrid'
         when h.element_s > 0 then 'element'
         else 'heat_pump' end as source_mix,
    h.compressor_wh,
    h.element_wh,
    h.standby_wh,
    h.compressor_wh + h.element_wh as electric_wh,
    h.tank_mean_start_c,
    h.tank_mean_end_c,
    h.tank_upper_start_c,
    h.tank_lower_start_c,
    h.stored_start_wh,
    h.stored_end_wh,
    h.setpoint_start_c as setpoint_c,
    h.dhw_mode,
    h.ambient_c,
    h.tank_avg_c,
    h.draw_overlap,
    case when h.anti_legionella then 'anti_legionella'
         when h.tank_lower_start_c <= 7.0 then 'freeze_protection'
         when h.setpoint_start_c > h.previous_setpoint_c then 'setpoint_raise'
         when h.mode_changed then 'mode_change'
         when h.last_draw_end >= h.cycle_start
                 - to_microseconds(cast(s.draw_context_s * 1e6 as bigint)) then 'draw'
         else 'standby_loss' end as trigger,
    h.loss_wh,
    h.ua_w_per_k,
    h.heat_out_wh,
    case when h.compressor_wh > 0
         then case when h.measurable
                   then (h.heat_out_wh - h.element_wh) / h.compressor_wh
                   else h.model_cop end end as cop,
    case when h.measurable then 'measured' else 'modelled' end as method,
    h.starts_after_gap or h.ends_at_gap as at_gap
from heat as h
cross join settings as s
