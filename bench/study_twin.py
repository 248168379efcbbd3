"""Study: the what-if twin against the simulator's ground truth, household by household
(docs/metrics.md section 6.1).

    .venv/bin/python bench/study_twin.py                       # the five households of 6.1
    .venv/bin/python bench/study_twin.py --households garage-25,basement-30
    .venv/bin/python bench/study_twin.py --no-inlet            # the fitted monthly inlet
    .venv/bin/python bench/study_twin.py --data-dir D          # keep (and reuse) the simulations

Each household is simulated as truth A (energy saver, 120 degF, January, 30 s polls,
America/Chicago) and, with the same seed (same weather and draws), under each scenario as truth B
(setpoint +-10 degF, heat pump only, electric, a 16:00-21:00 shift). The twin is fitted on A's
warehouse only (``warehouse.refresh``), backcasts A and predicts every B (``twin.whatif``; with
``NAVILINK_INLET_TEMPERATURE_F`` set to the true mean inlet unless ``--no-inlet``). Per household
and scenario: the relative errors of total, heat-pump, element and peak-window kWh and of run-out
minutes, and pass/fail against issue 14's targets. Writes bench/results/study_twin.json (or
``--out``) and prints a table. Households run in parallel processes (``--jobs``, 2).

Households: the five tuning ones (basement-22..24 and garage-25, 4 days; conditioned-26, 7 days)
and held-out ones never used while tuning the twin (basement-30, garage-31, 4 days).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TZ = "America/Chicago"
START = datetime(2026, 1, 5, tzinfo=UTC)
BASE: dict[str, Any] = {"setpoint_f": 120.0, "mode": "energy_saver"}
SCENARIOS: dict[str, dict[str, Any]] = {
    "setpoint +10": {"setpoint_f": 130.0},
    "setpoint -10": {"setpoint_f": 110.0},
    "heat pump only": {"mode": "heat_pump"},
    "electric": {"mode": "electric"},
    "shift 16:00-21:00": {"shift": "16:00-21:00"},
}
HOUSEHOLDS: dict[str, tuple[str, int, int]] = {  # name -> (location, seed, days)
    "basement-22": ("basement", 22, 4),
    "basement-23": ("basement", 23, 4),
    "basement-24": ("basement", 24, 4),
    "garage-25": ("garage", 25, 4),
    "conditioned-26": ("conditioned", 26, 7),
    "basement-30": ("basement", 30, 4),
    "garage-31": ("garage", 31, 4),
}
TUNING = ["basement-22", "basement-23", "basement-24", "garage-25", "conditioned-26"]
HELD_OUT = ["basement-30", "garage-31"]
# issue 14's targets: (relative, absolute floor per week or None)
BACKCAST = {"total_kwh": (0.03, None), "element_kwh": (0.10, 0.3)}
WHATIF = {"total_kwh": (0.05, None), "element_kwh": (0.15, 0.5), "runout_min": (0.20, 10.0),
          "peak_kwh": (0.10, None)}
SHOWN = ("total_kwh", "heat_pump_kwh", "element_kwh", "peak_kwh", "runout_min")


def _truth(data: Path, name: str) -> Any:
    import polars as pl

    return pl.read_parquet(data / "truth" / name / "**" / "*.parquet", hive_partitioning=False)


def _simulate(folder: Path, location: str, seed: int, days: int, opts: dict[str, Any]) -> None:
    from navilink_etl.sim.simulate import simulate

    if any(folder.glob("truth/steps/**/*.parquet")):
        return  # reuse
    simulate(folder, devices=1, days=days, interval_s=30, seed=seed, start=START, ems_tz=TZ,
             location=location, **(BASE | opts))


def _check(pred: float | None, true: float | None, target: tuple[float, float | None],
           weeks: float) -> bool | None:
    if pred is None or true is None:
        return None
    rel, floor = target
    return abs(pred - true) <= max(rel * abs(true), (floor or 0.0) * weeks)


def _rel(pred: float | None, true: float | None) -> float | None:
    if pred is None or true is None:
        return None
    if true == 0:
        return 0.0 if pred == 0 else None
    return (pred - true) / abs(true)


def run_household(name: str, root: Path, inlet: bool, days_override: int | None = None,
                  unseen: bool = True, spin_up: bool = True, inlet_calibration: bool = True) -> dict[str, Any]:
    """Simulate (or reuse) one household, fit, backcast and predict; the errors per figure."""
    import polars as pl

    from navilink_etl import warehouse
    from navilink_etl.config import NaviLinkConfig
    from navilink_etl.physics import f_to_c
    from navilink_etl.twin import Scenario, whatif
    from navilink_etl.twin.metrics import Window, run_metrics
    from navilink_etl.twin.replay import epoch_frame
    from navilink_etl.twin.tariff import price_function

    location, seed, days = HOUSEHOLDS[name]
    days = days_override or days
    home = root / name
    t_wall = time.perf_counter()
    _simulate(home / "A", location, seed, days, {})
    for sc, opts in SCENARIOS.items():
        _simulate(home / sc, location, seed, days, opts)
    t_sim = time.perf_counter() - t_wall
    inlet_c = float(_truth(home / "A", "steps")["inlet_c"].mean())
    kw: dict[str, Any] = {"inlet_temperature_f": inlet_c * 1.8 + 32} if inlet else {}
    cfg = NaviLinkConfig(data_dir=home / "A", polling_interval=30, timezone=TZ, **kw)
    t = time.perf_counter()
    warehouse.refresh(cfg)
    t_refresh = time.perf_counter() - t
    t = time.perf_counter()
    result = whatif(cfg, scenarios=[Scenario(n, **o) for n, o in SCENARIOS.items()], unseen_draws=unseen,
                    spin_up=spin_up, inlet_calibration=inlet_calibration)
    t_twin = time.perf_counter() - t
    assert result.inputs is not None
    price, _ = price_function(cfg, result.device)
    window = Window(16 * 60, 21 * 60, TZ)
    t0, t1 = result.inputs.t0, result.inputs.t1
    delivery_c = f_to_c(105.0)
    weeks = days / 7.0

    def truth_m(data: Path) -> dict[str, float | None]:
        steps = epoch_frame(_truth(data, "steps"), ("t_start", "t_end"))
        steps = steps.filter((pl.col("t_start") >= t0) & (pl.col("t_start") < t1))
        return run_metrics(steps, epoch_frame(_truth(data, "draws"), ("start", "end")), price, window, delivery_c)

    rows: list[dict[str, Any]] = []
    meas, pred, truth_a = result.backcast_measured, result.backcast_predicted, truth_m(home / "A")
    rows.append({
        "scenario": "backcast", "reference": "measured",
        "predicted": {k: pred[k] for k in SHOWN}, "reference_values": {k: meas[k] for k in SHOWN},
        "truth_a": {k: truth_a[k] for k in SHOWN},
        "error": {k: _rel(pred[k], meas[k]) for k in SHOWN},
        "pass": {k: _check(pred[k], meas[k], tgt, weeks) for k, tgt in BACKCAST.items()},
    })
    for res in result.scenarios:
        tb = truth_m(home / res.name)
        rows.append({
            "scenario": res.name, "reference": "truth B",
            "predicted": {k: res.predicted[k] for k in SHOWN}, "reference_values": {k: tb[k] for k in SHOWN},
            "error": {k: _rel(res.predicted[k], tb[k]) for k in SHOWN},
            "pass": {k: _check(res.predicted[k], tb[k], tgt, weeks) for k, tgt in WHATIF.items()},
        })
    truth_draws = _truth(home / "A", "draws")  # those of the period (a longer run has more)
    t0 = datetime.fromtimestamp(result.inputs.t0, UTC)
    t1 = datetime.fromtimestamp(result.inputs.t1, UTC)
    truth_draws = truth_draws.filter((pl.col("start") >= t0) & (pl.col("start") < t1))
    dev = _truth(home / "A", "devices").row(0, named=True)
    fitted = result.fitted_params
    return {
        "household": name, "location": location, "seed": seed, "days": days,
        "inlet_configured": inlet, "true_inlet_c": inlet_c,
        "params": {"cop_fitted": fitted.cop_factor if fitted else None, "cop_used": result.params.cop_factor,
                   "cop_true": dev["cop_scale"], "ua": result.params.ua_w_per_k, "ua_true": dev["ua_w_per_k"],
                   "capacity": result.params.capacity_wh_per_k, "capacity_true": dev["capacity_wh_per_k"],
                   "inlet_c": result.params.inlet_c, "cooling_k": result.inputs.cooling_k,
                   "cooling_k_true": {"basement": 1.5, "garage": 1.0, "conditioned": 0.3}[location]},
        "inlet_calibration": None if result.inlet_fit is None else {
            "found_c": result.params.inlet_at_month(t0.month), "fitted_c": result.inlet_fitted_c,
            "offset_k": result.inlet_fit.offset_k, "rms_k": result.inlet_fit.rms_k,
            "replays": result.inlet_fit.replays, "samples": result.inlet_fit.samples,
            "seconds": result.inlet_fit.seconds},
        "backcast_uncalibrated_error": {k: result.errors_uncalibrated.get(k) for k in ("total_kwh", "element_kwh")},
        "draws_seen_energy": result.inputs.draw_energy_wh / float(truth_draws["energy_wh"].sum()),
        "unseen_draws": unseen,
        "unseen_restored_energy": result.inputs.unseen_wh / float(truth_draws["energy_wh"].sum()),
        "unseen_restored_in_heating": result.inputs.unseen_heating_wh / float(truth_draws["energy_wh"].sum()),
        "notes": list(result.inputs.notes),
        "rows": rows,
        "seconds": {"simulate": round(t_sim, 1), "refresh": round(t_refresh, 1), "twin": round(t_twin, 1)},
    }


def _fmt(x: float | None, ok: bool | None) -> str:
    if x is None:
        return "    -   "
    mark = "" if ok is None else (" " if ok else "*")
    return f"{100 * x:+7.1f}%{mark}"


def print_table(results: list[dict[str, Any]]) -> None:
    head = f"{'household':<15} {'scenario':<18}" + "".join(f"{k.replace('_kwh', '').replace('_min', ''):>10}"
                                                           for k in SHOWN)
    print(head)
    print("-" * len(head))
    for h in results:
        for r in h["rows"]:
            cells = "".join(f"{_fmt(r['error'][k], r['pass'].get(k)):>10}" for k in SHOWN)
            print(f"{h['household']:<15} {r['scenario']:<18}{cells}")
        p = h["params"]
        ic = h.get("inlet_calibration")
        if ic:
            print(f"{'':<15} inlet found {ic['found_c']:.2f} degC (fitted {ic['fitted_c'] or ic['found_c']:.2f}, "
                  f"true {h['true_inlet_c']:.2f}) in {ic['replays']} replays, {ic['seconds']:.1f} s")
        print(f"{'':<15} cop fitted {p['cop_fitted']:.4f} used {p['cop_used']:.4f} (true {p['cop_true']:.4f}); "
              f"cooling {p['cooling_k']:.2f} K (true {p['cooling_k_true']}); draws seen "
              f"{100 * h['draws_seen_energy']:.1f} % of the energy, unseen put back "
              f"{100 * h.get('unseen_restored_energy', 0.0):.1f} %")
    fails = [(h["household"], r["scenario"], k) for h in results for r in h["rows"]
             for k, ok in r["pass"].items() if ok is False]
    print(f"\n{len(fails)} figure(s) outside the targets (*): "
          + (", ".join(f"{a}/{b}/{c}" for a, b, c in fails) or "none"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", default=",".join(TUNING),
                    help=f"comma-separated names, 'held-out' or 'all' (default: the five tuning ones); "
                         f"known: {', '.join(HOUSEHOLDS)}")
    ap.add_argument("--no-inlet", action="store_true",
                    help="do not configure the true mean inlet (the twin takes the fitted monthly inlet)")
    ap.add_argument("--data-dir", type=Path, help="folder for the simulations (kept and reused; default: temp)")
    ap.add_argument("--days", type=int, help="simulate this many days for every household (default: 4, the "
                                             "conditioned room 7); use its own --data-dir")
    ap.add_argument("--no-unseen", action="store_true",
                    help="replay only the draws mart's draws (not the micro-draws found from the stored "
                         "energy's unexplained drops): the reference the micro-draws are measured against")
    ap.add_argument("--no-spin-up", action="store_true",
                    help="always start the replay at the period's first sample (not at the last full tank "
                         "in the 48 h before it): the reference the spin-up is measured against")
    ap.add_argument("--no-inlet-calibration", action="store_true",
                    help="with --no-inlet, keep the fitted inlet (do not calibrate it on the backcast's lower "
                         "thermistor): the reference the calibration is measured against")
    ap.add_argument("--jobs", type=int, default=2, help="households in parallel processes (2)")
    ap.add_argument("--out", type=Path, help="results JSON (bench/results/study_twin.json; "
                                             "study_twin_no_inlet.json with --no-inlet; _no_unseen "
                                             "appended with --no-unseen)")
    args = ap.parse_args(argv)
    if args.households == "all":
        names = list(HOUSEHOLDS)
    elif args.households == "held-out":
        names = HELD_OUT
    else:
        names = [n.strip() for n in args.households.split(",") if n.strip()]
    unknown = [n for n in names if n not in HOUSEHOLDS]
    if unknown:
        ap.error(f"unknown household(s) {', '.join(unknown)}: choose from {', '.join(HOUSEHOLDS)}")
    tmp = tempfile.TemporaryDirectory(prefix="study_twin_")
    root = args.data_dir or Path(tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    load = os.getloadavg()[0]
    inlet = not args.no_inlet
    if args.jobs > 1 and len(names) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_household, n, root, inlet, args.days, not args.no_unseen,
                                   not args.no_spin_up, not args.no_inlet_calibration)
                       for n in names]
            results = []
            for n, f in zip(names, futures, strict=True):
                results.append(f.result())
                print(f"done {n}", file=sys.stderr, flush=True)
    else:
        results = []
        for n in names:
            results.append(run_household(n, root, inlet, args.days, not args.no_unseen, not args.no_spin_up,
                                         not args.no_inlet_calibration))
            print(f"done {n}", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t
    print_table(results)
    out = {"inlet_configured": inlet, "inlet_calibration": not args.no_inlet_calibration, "unseen_draws": not args.no_unseen, "spin_up": not args.no_spin_up, "households": results, "wall_s": round(wall, 1),
           "load_average_at_start": load,
           "targets": {"backcast": BACKCAST, "whatif": WHATIF}}
    stem = (("study_twin" if inlet else "study_twin_no_inlet") + ("_no_unseen" if args.no_unseen else "")
            + ("_no_spin_up" if args.no_spin_up else "")
            + ("_no_calibration" if args.no_inlet_calibration and not inlet else ""))
    dest = args.out or Path(__file__).parent / "results" / f"{stem}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1, default=str))
    print(f"\n{len(names)} household(s) in {wall:.0f} s; wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
