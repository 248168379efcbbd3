"""A full warehouse build by this tree equals one by an earlier revision, table by table.

Usage: .venv/bin/python bench/compare_build.py [--ref HEAD~1] [--days 30] [--devices 2]
       [--data DIR]

Simulates ``--devices`` heaters for ``--days`` (or reuses ``--data``), builds the warehouse in
full with the package of git revision ``--ref`` (extracted to a temporary folder, run in its own
process) and with this tree, and compares every stored table of the two files: row counts, keys,
integers, strings and timestamps exactly, floats to 1e-9 relative (DuckDB adds in parallel, so two
builds by the same code differ in the last bits too). Prints the build times of both and writes
bench/results/compare_build.json. Exits 1 when a table differs. For changes meant to be
performance-only (the SQL models, refresh.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TZ = "America/Los_Angeles"

# Run in a child process whose sys.path starts with the package to build with.
BUILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from navilink_etl import warehouse
from navilink_etl.config import NaviLinkConfig
cfg = NaviLinkConfig(data_dir=Path(sys.argv[2]), polling_interval=30, timezone=sys.argv[3])
r = warehouse.refresh(cfg, full=True)
print(json.dumps({"seconds": r.seconds, "rows": r.rows, "package": warehouse.__file__}))
"""


def _extract(ref: str, into: Path) -> Path:
    """The package ``navilink_etl`` as of ``ref`` under ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref,
                              "navilink_etl"], check=True, capture_output=True).stdout
    into.mkdir(parents=True)
    with tempfile.TemporaryFile() as fh:
        fh.write(archive)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            tar.extractall(into, filter="data")
    return into


def _build(package_root: Path, data: Path) -> dict[str, object]:
    (data / "warehouse.duckdb").unlink(missing_ok=True)
    shutil.rmtree(data / "marts", ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", BUILD, str(package_root), str(data), TZ],
                         check=True, capture_output=True, text=True, cwd=tempfile.gettempdir())
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default="HEAD~1", help="git revision to compare with (HEAD~1)")
    ap.add_argument("--days", type=float, default=30, help="days to simulate (30)")
    ap.add_argument("--devices", type=int, default=2, help="heaters to simulate (2)")
    ap.add_argument("--data", type=Path, help="a data folder to use instead of simulating")
    args = ap.parse_args()

    from tests.marts_helpers import assert_same_frame, tables

    tmp = Path(tempfile.mkdtemp(prefix="compare_build_"))
    try:
        data = tmp / "data"
        if args.data:
            for sub in ("status", "energy"):
                if (args.data / sub).is_dir():
                    shutil.copytree(args.data / sub, data / sub)
        else:
            from navilink_etl.sim.simulate import simulate

            simulate(data, devices=args.devices, days=args.days, interval_s=30, seed=11,
                     loss=0.05, outage_per_week=True)
        old = _build(_extract(args.ref, tmp / "ref"), data)
        old_file = tmp / "ref.duckdb"
        shutil.move(data / "warehouse.duckdb", old_file)
        new = _build(ROOT, data)
        differ: dict[str, str] = {}
        ta, tb = tables(old_file), tables(data / "warehouse.duckdb")
        for name in ta:
            try:
                assert_same_frame(ta[name], tb[name], name)
            except AssertionError as exc:
                differ[name] = str(exc).splitlines()[0] if str(exc) else "differs"
        rows = {name: ta[name].height for name in ta}
        print(f"{args.ref}: {old['seconds']:.1f} s; this tree: {new['seconds']:.1f} s "
              f"({float(new['seconds']) / float(old['seconds']):.2f}x)")  # type: ignore[arg-type]
        print(f"{len(ta) - len(differ)} of {len(ta)} stored tables equal"
              + ("" if not differ else f"; differ: {differ}"))
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "compare_build.json").write_text(json.dumps({
            "at": datetime.now(UTC).isoformat(timespec="seconds"), "ref": args.ref,
            "days": args.days, "devices": args.devices, "load_average": os.getloadavg()[0],
            "ref_s": old["seconds"], "tree_s": new["seconds"], "rows": rows,
            "differ": differ}, indent=2) + "\n")
        return 1 if differ else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
