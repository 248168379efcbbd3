"""NWP500 physics: a 12-node stratified tank (plug-flow draws, standby loss, inversion mixing) and
the two resistance elements; the heat pump's input power and COP come from ``navilink_etl.cop``.

Pure-Python floats over 12 nodes (faster than numpy at this size); every step returns its
energies so the caller's ledger closes exactly: heat in - loss - draw = change in stored energy.
Node 0 is the bottom of the tank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

from ..cop import AMBIENT_MAX_F, AMBIENT_MIN_F, COP_FLOOR, HP_LOCKOUT_F, HP_MAP, hp_performance
from ..physics import F_AT_0_C, F_PER_K, WH_PER_L_K, c_to_f

WATER_L = {50: 189.2, 65: 241.7, 80: 302.8}
UA_W_PER_K = {50: 1.9, 65: 2.1, 80: 2.5}
ELEMENT_W = {240: 5000.0, 208: 3755.0}

# The heat-pump map, the lockout and the unit constants have their own homes (re-exported here
# for the simulator's modules).
__all__ = ["ELEMENT_W", "HP_LOCKOUT_F", "UA_W_PER_K", "WATER_L", "WH_PER_L_K", "Tank", "TankSpec",
           "c_to_f", "hp_performance", "hp_performance_c"]


@dataclass(frozen=True, slots=True)
class TankSpec:
    """Constants of one heater."""

    volume_gal: int = 65
    water_l: float = 241.7
    ua_w_per_k: float = 2.1
    voltage_v: int = 240
    element_w: float = 5000.0
    n_nodes: int = 12
    condenser_nodes: int = 5  # bottom ~40 % is wrapped by the condenser
    upper_element_node: int = 8  # ~3/4 height
    lower_element_node: int = 0  # bottom
    upper_sensor_node: int = 8
    lower_sensor_node: int = 2  # ~1/4 height

    @classmethod
    def for_model(cls, volume_gal: int = 65, voltage_v: int = 240, *,
                  ua_w_per_k: float | None = None) -> TankSpec:
        if volume_gal not in WATER_L:
            raise ValueError(f"volume_gal must be one of {sorted(WATER_L)}")
        if voltage_v not in ELEMENT_W:
            raise ValueError(f"voltage_v must be one of {sorted(ELEMENT_W)}")
        return cls(volume_gal=volume_gal, water_l=WATER_L[volume_gal],
                   ua_w_per_k=UA_W_PER_K[volume_gal] if ua_w_per_k is None else ua_w_per_k,
                   voltage_v=voltage_v, element_w=ELEMENT_W[voltage_v])

    @property
    def capacity_wh_per_k(self) -> float:
        return self.water_l * WH_PER_L_K


def _hp_segments() -> tuple[tuple[float, tuple[float, ...]], ...]:
    """``HP_MAP`` as segments (start degF, span, a, da, b, db, c, dc, d, dd), last first."""
    segs = []
    for lo, hi in pairwise(HP_MAP):
        segs.append((lo[0], (lo[0], hi[0] - lo[0], lo[1], hi[1] - lo[1], lo[2], hi[2] - lo[2],
                             lo[3], hi[3] - lo[3], lo[4], hi[4] - lo[4])))
    return tuple(reversed(segs))


_HP_SEGMENTS = _hp_segments()
_HP_FIRST = _HP_SEGMENTS[-1][1]


def hp_performance_c(tank_c: float, ambient_c: float) -> tuple[float, float]:
    """``cop.hp_performance`` with the map's segments prepared once: the same operations in the
    same order, so the same floats to the last bit (the simulator calls it every running step)."""
    amb_f = min(max(ambient_c * F_PER_K + F_AT_0_C, AMBIENT_MIN_F), AMBIENT_MAX_F)
    seg = _HP_FIRST
    for x0, s in _HP_SEGMENTS[:-1]:  # cop._segment: the last segment starting at or below
        if amb_f >= x0:
            seg = s
            break
    x0, span, a0, da, b0, db, c0, dc, d0, dd = seg
    f = (amb_f - x0) / span
    t_f = tank_c * F_PER_K + F_AT_0_C
    return (a0 + f * da) + (b0 + f * db) * t_f, max(COP_FLOOR, (c0 + f * dc) + (d0 + f * dd) * t_f)


class Tank:
    """Node temperatures (degC, bottom first) and the step that moves them."""

    __slots__ = ("_c_node", "_decay", "_decay_ua", "_ua_node", "_v_node", "spec", "t")

    def __init__(self, spec: TankSpec, initial_c: float | list[float]) -> None:
        self.spec = spec
        n = spec.n_nodes
        self.t: list[float] = [float(initial_c)] * n if isinstance(initial_c, int | float) else [float(x) for x in initial_c]
        if len(self.t) != n:
            raise ValueError(f"need {n} node temperatures")
        self._c_node = spec.capacity_wh_per_k / n
        self._ua_node = spec.ua_w_per_k / n
        self._v_node = spec.water_l / n
        self._decay: dict[float, tuple[float, float]] = {}  # dt -> (a, 1 - a) at _decay_ua
        self._decay_ua = self._ua_node

    @property
    def mean_c(self) -> float:
        return sum(self.t) / len(self.t)

    @property
    def upper_c(self) -> float:
        return self.t[self.spec.upper_sensor_node]

    @property
    def lower_c(self) -> float:
        return self.t[self.spec.lower_sensor_node]

    @property
    def condenser_c(self) -> float:
        k = self.spec.condenser_nodes
        return sum(self.t[:k]) / k

    @property
    def hp_map_c(self) -> float:
        """The "tank temperature" the heat-pump map is read at: halfway between the wrapped
        (condenser) zone and the whole tank. The zone alone gives recoveries after draws a COP
        near 4 (the field median is 2.89), the whole tank alone a DOE UEF below 3.3."""
        return 0.5 * (self.mean_c + self.condenser_c)

    def stored_wh(self, reference_c: float) -> float:
        return self.spec.capacity_wh_per_k * (self.mean_c - reference_c)

    def _decay_of(self, dt_s: float) -> tuple[float, float]:
        """(a, 1 - a): the standby loss's exact per-node decay over ``dt_s`` (cached per UA)."""
        ua = self._ua_node
        if ua != self._decay_ua:  # a fault changed the UA
            self._decay = {}
            self._decay_ua = ua
        d = self._decay.get(dt_s)
        if d is None:
            a = 1.0 - math.exp(-ua * dt_s / 3600.0 / self._c_node)
            d = self._decay[dt_s] = (a, 1.0 - a)
        return d

    def step(self, dt_s: float, *, heat_hp_wh: float, heat_upper_wh: float, heat_lower_wh: float,
             draw_lpm: float, inlet_c: float, ambient_c: float) -> tuple[float, float, float]:
        """Advance ``dt_s``: add heat, lose heat to the room, draw. Returns (loss Wh, draw L,
        draw Wh relative to the inlet temperature)."""
        return self.advance(dt_s, heat_hp_wh, heat_upper_wh, heat_lower_wh, draw_lpm, inlet_c,
                            ambient_c)

    def advance(self, dt_s: float, heat_hp_wh: float, heat_upper_wh: float, heat_lower_wh: float,
                draw_lpm: float, inlet_c: float, ambient_c: float) -> tuple[float, float, float]:
        """``step`` with positional arguments (the controller's per-step call)."""
        t = self.t
        cn = self._c_node
        spec = self.spec
        if heat_hp_wh:
            k = spec.condenser_nodes
            d = heat_hp_wh / (k * cn)
            for i in range(k):
                t[i] += d
        if heat_upper_wh:
            t[spec.upper_element_node] += heat_upper_wh / cn
        if heat_lower_wh:
            t[spec.lower_element_node] += heat_lower_wh / cn
        # standby loss, per node against the room (exact exponential decay per node)
        decay = self._decay.get(dt_s) if self._ua_node == self._decay_ua else None
        a, g = decay if decay is not None else self._decay_of(dt_s)
        s0 = sum(t)
        pull = ambient_c * a
        t[:] = [x * g + pull for x in t]
        loss_wh = (s0 - sum(t)) * cn
        draw_l = draw_wh = 0.0
        if draw_lpm > 0.0:
            n = len(t)
            draw_l = draw_lpm * dt_s / 60.0
            frac = draw_l / self._v_node
            sub = max(1, math.ceil(frac / 0.5))  # at most half a node per sub-shift
            f = frac / sub
            g = 1.0 - f
            out_k = 0.0
            for _ in range(sub):
                out_k += t[n - 1] - inlet_c
                for i in range(n - 1, 0, -1):
                    t[i] = g * t[i] + f * t[i - 1]
                t[0] = g * t[0] + f * inlet_c
            draw_wh = out_k * f * cn
        # heat added uniformly to a zone of a stratified tank can only invert at the zone's top:
        # pool there (upper zone first), then check the whole column once
        if heat_upper_wh:
            self._pool_above(spec.upper_element_node)
        if heat_hp_wh:
            self._pool_above(spec.condenser_nodes - 1)
        if heat_lower_wh:
            self._pool_above(spec.lower_element_node)
        if t != sorted(t):
            self.mix()
        return loss_wh, draw_l, draw_wh

    def idle_step(self, dt_s: float, ambient_c: float) -> float:
        """Standby loss only; returns the loss in Wh."""
        t = self.t
        a, g = self._decay_of(dt_s)
        s0 = sum(t)
        pull = ambient_c * a
        t[:] = [x * g + pull for x in t]
        return (s0 - sum(t)) * self._c_node

    def _pool_above(self, i: int) -> None:
        """Pool node ``i`` with the colder nodes above it (and warmer ones below the pool) until
        the column is stable there: the adjacent-violators step for one inversion."""
        t = self.t
        n = len(t)
        if i + 1 >= n or t[i] <= t[i + 1]:
            return
        lo_i, hi_i = i, i + 1  # the pool is t[lo_i:hi_i]
        s, c = t[i], 1
        while True:
            while hi_i < n and s > t[hi_i] * c:
                s += t[hi_i]
                c += 1
                hi_i += 1
            if lo_i > 0 and t[lo_i - 1] * c > s:
                lo_i -= 1
                s += t[lo_i]
                c += 1
                continue
            break
        t[lo_i:hi_i] = [s / c] * c

    def mix(self) -> None:
        """Remove inversions (warmer water below colder) by pooling adjacent nodes (buoyancy)."""
        t = self.t
        if t == sorted(t):
            return
        sums: list[float] = []
        counts: list[int] = []
        for x in t:
            s, c = x, 1
            while sums and sums[-1] * c > s * counts[-1]:  # the block below is warmer
                s += sums.pop()
                c += counts.pop()
            sums.append(s)
            counts.append(c)
        i = 0
        for s, c in zip(sums, counts, strict=True):
            t[i:i + c] = [s / c] * c
            i += c
