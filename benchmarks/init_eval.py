"""`deepself init` on the five development sets of benchmarks/tsc_parity.py, run with no edits.

For each set (written as a user would by tsc_parity's own code: one ``.npy`` per recording, a
sheet with ``fold`` = train / test): ``deepself init data/sheet.csv --out c.yaml`` with the chosen
preset (and ``--budget``, if given), then ``snakemake --cores 2`` on what it wrote, in a fresh
process; and, unless ``--no-aeon``, aeon's four rockets on the same arrays (tsc_parity's
``run_aeon``). It prints per set the best deepself system's UAR on the test split, select's, aeon's
best, the workflow's wall time against the estimate ``deepself init`` printed, and aeon's
MultiRocket process time; then the means over the sets.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/init_eval.py [--sets ItalyPowerDemand ...]
        [--preset fast|good|best] [--budget 10m] [--work DIR] [--no-aeon]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from tsc_parity import REPO, SCRIPT_ROCKETS, SETS, load, run_aeon, write_user_files

ESTIMATE = re.compile(r"the workflow about (\d+) s of wall time")


def run(command: list[str], folder: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    return time.perf_counter() - start, result


def one_set(name: str, work: Path, args) -> dict:
    folder = work / name
    parts = load(name)
    write_user_files(folder, parts)
    init = [sys.executable, "-m", "deepself", "init", "data/sheet.csv", "--out", "c.yaml", "--preset", args.preset,
            "--cores", "2", *(["--budget", args.budget] if args.budget else [])]
    init_s, result = run(init, folder)
    if result.returncode != 0:
        sys.exit(f"{name}: deepself init failed\n{result.stderr[-3000:]}")
    estimate = float(ESTIMATE.search(result.stdout).group(1))
    workflow_s, result = run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                              "--configfile", "c.yaml", "--cores", "2"], folder)
    if result.returncode != 0:
        sys.exit(f"{name}: snakemake failed\n{result.stderr[-3000:]}")
    summary = pd.read_csv(folder / "results" / "c" / "report" / "summary.csv").set_index("system")
    uar = 100 * summary["uar_mean"]
    row = {"set": name, "best_system": uar.idxmax(), "best": uar.max(), "select": uar.get("select", float("nan")),
           "init_s": init_s, "estimate_s": estimate, "workflow_s": workflow_s}
    row["measured/estimate"] = workflow_s / estimate
    if not args.no_aeon:
        aeon = run_aeon(folder, parts)
        # the bar of the baseline issue: the better of aeon's MiniRocket and MultiRocket recipes; and of all four
        row["aeon_best"] = 100 * max(aeon[r]["uar"] for r in SCRIPT_ROCKETS)
        row["aeon_best4"] = 100 * max(r["uar"] for r in aeon.values())
        row["aeon_multirocket_s"] = aeon["multirocket"]["seconds"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=SETS, choices=SETS)
    parser.add_argument("--preset", choices=["fast", "good", "best"], default="good")
    parser.add_argument("--budget", help="passed to deepself init (e.g. 2m)")
    parser.add_argument("--work", help="folder for the data and results (default: a temporary one)")
    parser.add_argument("--no-aeon", action="store_true", help="skip aeon's rockets")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        rows = []
        for name in args.sets:
            row = one_set(name, work, args)
            rows.append(row)
            print(" ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    table = pd.DataFrame(rows).set_index("set")
    pd.set_option("display.width", 200)
    print(table.round(2).to_string())
    print("mean over the sets:")
    print(table.mean(numeric_only=True).round(2).to_string())


if __name__ == "__main__":
    main()
