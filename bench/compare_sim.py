"""Equality check for simulator speed work: the same outputs, to the last bit, before and after.

    .venv/bin/python bench/compare_sim.py --write REF_DIR   # with the code before the change
    .venv/bin/python bench/compare_sim.py --check REF_DIR   # with the changed code

Runs ``simulate`` for a fixed set of configurations (rooms, modes, a load shift, faults, 30 s and
300 s polls, two devices, a DOE draw pattern) and a 7-day what-if twin (its replays under several
settings, and ``whatif``'s figures), and writes every output frame to ``REF_DIR`` (``--write``) or
compares every one with what is there (``--check``: exact equality of each column, NaN == NaN;
exits 1 on any difference). The reference belongs outside the repository (e.g. under /tmp).

The twin's fitted parameters and inputs are pickled into ``REF_DIR`` by ``--write`` and reused
by ``--check``, so the replays compare the simulator's plant and controller alone (the warehouse
and the fit are not part of what changed). ``--only NAME`` limits the run to some cases.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

START = datetime(2025, 1, 6, tzinfo=UTC)
SUMMER = datetime(2025, 7, 7, tzinfo=UTC)


def _cases() -> dict[str, dict[str, Any]]:
    from navilink_etl.sim.faults import Fault

    faults = [
        Fault("cop_degradation", START + timedelta(days=1), cop_scale=0.7, ramp_days=1.5),
        Fault("ua_increase", START + timedelta(days=1, hours=5), scale=2.0, ramp_days=1.0),
        Fault("element_degradation", START + timedelta(days=2), scale=0.6),
        Fault("stuck_sensor", START + timedelta(hours=20), START + timedelta(days=2), sensor="lower"),
        Fault("error_code", START + timedelta(days=2, hours=3), START + timedelta(days=2, hours=9),
              code=480, sub_code=2),
        Fault("outage", START + timedelta(hours=30), START + timedelta(hours=33)),
    ]
    return {
        "basement_saver_30s": dict(days=3, interval_s=30, seed=1, loss=0.05, outage_per_week=True,
                                   location="basement"),
        "garage_electric_300s": dict(days=3, interval_s=300, seed=2, location="garage",
                                     mode="electric", ems_tz="America/Chicago"),
        "garage_winter_high_demand_shift": dict(days=3, interval_s=30, seed=3, location="garage",
                                                mode="high_demand", shift="16:00-21:00",
                                                ems_tz="America/Denver", setpoint_f=130.0),
        "conditioned_heat_pump_summer": dict(days=2, interval_s=30, seed=4, location="conditioned",
                                             mode="heat_pump", start=SUMMER, volume_gal=80,
                                             firmware="2025-10", anti_legionella_days=1),
        "basement_faults_2dev": dict(days=3, interval_s=30, seed=5, devices=2, faults=faults,
                                     loss=0.02, setpoint_f=125.0),
        "basement_doe_high_50gal_208v": dict(days=2, interval_s=300, seed=6, volume_gal=50,
                                             voltage_v=208, draws="doe-high", setpoint_f=140.0),
        "garage_shift_saver_15s": dict(days=2, interval_s=15, seed=7, location="garage",
                                       shift="06:00-09:00", ems_tz="America/New_York"),
    }


def _frames(root: Path) -> dict[str, pl.DataFrame]:
    """Every Parquet output under ``root`` by table, rows in a fixed order."""
    out: dict[str, pl.DataFrame] = {}
    tables: dict[str, list[Path]] = {}
    for p in sorted(root.rglob("*.parquet")):
        rel = p.relative_to(root).parts
        # truth/steps/device=../date=../part-<uuid>: the table is the path without hive keys/file
        key = "/".join(x for x in rel[:-1] if "=" not in x)
        tables.setdefault(key, []).append(p)
    for key, paths in tables.items():
        parts = []
        for p in paths:
            df = pl.read_parquet(p, hive_partitioning=False)
            parts.append(df)
        df = pl.concat(parts, how="diagonal_relaxed")
        sort_cols = [c for c in df.columns if df.schema[c] != pl.Object]
        out[key] = df.sort(sort_cols, nulls_last=True, maintain_order=True)
    return out


def _simulate_case(opts: dict[str, Any]) -> dict[str, pl.DataFrame]:
    from navilink_etl.sim.simulate import simulate

    opts = {"start": START, **opts}
    with tempfile.TemporaryDirectory(prefix="compare_sim_") as tmp:
        simulate(Path(tmp), **opts)
        return _frames(Path(tmp))


_WORLD: list[tuple[Any, Any, dict[str, Any]]] = []


def _twin_world() -> tuple[Any, Any, dict[str, Any]]:
    """(fitted params, inputs, ``whatif`` figures) of an 8-day household simulated, refreshed
    into a warehouse and run through ``whatif`` (a backcast + 2 scenarios); once per process."""
    if _WORLD:
        return _WORLD[0]
    from navilink_etl import warehouse
    from navilink_etl.config import NaviLinkConfig
    from navilink_etl.sim.simulate import simulate
    from navilink_etl.twin import Scenario, whatif

    with tempfile.TemporaryDirectory(prefix="compare_twin_") as tmp:
        data = Path(tmp)
        tz = "America/Chicago"
        simulate(data, devices=1, days=8, interval_s=30, seed=22,
                 start=datetime(2026, 1, 5, tzinfo=UTC), ems_tz=tz, setpoint_f=120.0,
                 mode="energy_saver")
        cfg = NaviLinkConfig(data_dir=data, polling_interval=30, timezone=tz)
        warehouse.refresh(cfg)
        res = whatif(cfg, scenarios=[Scenario("setpoint +10", setpoint_f=130.0),
                                     Scenario("heat pump only", mode="heat_pump")])
    _WORLD.append((res.params, res.inputs, res.to_dict()))
    return _WORLD[0]


def _twin_case(ref: Path, write: bool) -> dict[str, pl.DataFrame]:
    """Replays under several settings of the reference's pickled params and inputs (so only the
    plant and controller are compared, not the warehouse or the fit)."""
    from navilink_etl.protocol import DhwMode
    from navilink_etl.sim.schedule import LoadShift
    from navilink_etl.twin.replay import Settings, replay

    path = ref / "twin_inputs.pkl"
    if write:
        params, inputs, _ = _twin_world()
        with path.open("wb") as f:
            pickle.dump((params, inputs), f)
    else:
        with path.open("rb") as f:
            params, inputs = pickle.load(f)  # noqa: S301 - our own file, written by --write
    settings = {
        "as_had": None,
        "setpoint_plus10": Settings(setpoint_half_c=inputs.settings[-1][1] + 11),
        "heat_pump": Settings(mode=int(DhwMode.HEAT_PUMP)),
        "electric": Settings(mode=int(DhwMode.ELECTRIC)),
        "high_demand": Settings(mode=int(DhwMode.HIGH_DEMAND)),
        "shift": Settings(shift=LoadShift.parse("16:00-21:00", inputs.tz)),
    }
    out: dict[str, pl.DataFrame] = {}
    for name, s in settings.items():
        run = replay(params, inputs, s)
        out[f"{name}/steps"] = run.steps
        out[f"{name}/draws"] = run.draws
        out[f"{name}/cycles"] = pl.DataFrame({"cycles": [run.cycles]})
    return out


def _whatif_case() -> dict[str, pl.DataFrame]:
    """``whatif`` end to end (simulate, warehouse, fit, backcast, scenarios): its figures."""
    _, _, figures = _twin_world()
    return {"whatif": pl.DataFrame({"json": [repr(figures)]})}


def _diff(name: str, got: pl.DataFrame, want: pl.DataFrame) -> list[str]:
    if got.schema != want.schema:
        return [f"{name}: schema {got.schema} != {want.schema}"]
    if got.height != want.height:
        return [f"{name}: {got.height} rows != {want.height}"]
    bad = []
    for c in got.columns:
        a, b = got[c], want[c]
        if a.dtype.is_float():
            same = ((a == b) | (a.is_nan() & b.is_nan())).fill_null(False) | (a.is_null() & b.is_null())
        else:
            same = a.eq_missing(b)
        n = int((~same).sum())
        if n:
            i = int((~same).arg_max() or 0)
            bad.append(f"{name}.{c}: {n} values differ (first at row {i}: {a[i]!r} != {b[i]!r})")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", type=Path, metavar="REF_DIR", help="write the reference outputs here")
    g.add_argument("--check", type=Path, metavar="REF_DIR", help="compare with the outputs here")
    ap.add_argument("--only", nargs="*", help="case names (default: all, and 'twin')")
    args = ap.parse_args(argv)
    ref: Path = args.write or args.check
    ref.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Any] = {name: (lambda o=o: _simulate_case(o)) for name, o in _cases().items()}
    cases["twin"] = lambda: _twin_case(ref, write=bool(args.write))
    cases["whatif"] = _whatif_case
    names = args.only or list(cases)
    problems: list[str] = []
    compared = 0
    for name in names:
        t = time.perf_counter()
        frames = cases[name]()
        for key, df in sorted(frames.items()):
            path = ref / name / (key.replace("/", "__") + ".parquet")
            if args.write:
                path.parent.mkdir(parents=True, exist_ok=True)
                df.write_parquet(path)
            else:
                if not path.exists():
                    problems.append(f"{name}/{key}: no reference file {path}")
                    continue
                problems += [f"{name}/{p}" for p in _diff(key, df, pl.read_parquet(path))]
                compared += df.height
        if args.check:
            missing = {p.stem for p in (ref / name).glob("*.parquet")} - \
                {k.replace("/", "__") for k in frames}
            problems += [f"{name}: output {m} is gone" for m in sorted(missing)]
        rows = sum(df.height for df in frames.values())
        print(f"{name}: {len(frames)} tables, {rows} rows, {time.perf_counter() - t:.1f} s", flush=True)
    if args.check:
        for p in problems:
            print("DIFF", p)
        print(f"{'IDENTICAL' if not problems else 'DIFFERENT'}: {compared} rows compared in "
              f"{len(names)} cases")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
