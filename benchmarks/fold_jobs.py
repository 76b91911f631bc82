"""Wall time of a whole workflow run with a training job per fold vs a job per model (train.folds_per_job).

The config (default: the embedded default, config/config.yaml) runs twice from scratch, one run
after the other, in two folders of a temporary directory: once with ``train.folds_per_job: 1``
(a job per model and fold) and once with it set to the count of folds (a job per model, which
trains the folds in turn). Each run is one ``snakemake --cores <cores>`` from the repository
root, so profiles/default applies as it does for a user (``gpu=1``: one training job at a time).
Printed per run: its wall time; the training jobs' count, the sum of their wall times (from the
rules' ``benchmark:`` files) and the part of it spent outside the epochs (``history.csv``): the
start-up and set-up that grouping folds saves, a steadier figure than the wall time on a busy
machine; and the share of the CPUs other processes took meanwhile. Then the ratio of the wall
times, and the largest difference between the two runs' predicted probabilities (0 expected:
the option changes only how folds are scheduled). ``--repeat`` alternates the order.

    .venv/bin/python benchmarks/fold_jobs.py
    .venv/bin/python benchmarks/fold_jobs.py --config config/bonn.yaml --cores 8 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from deepself.config import load_config
from deepself.io.preflight import fold_names

REPO = Path(__file__).resolve().parents[1]


def cpu_ticks() -> tuple[float, float]:
    """(busy, total) seconds of all CPUs so far, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [float(v) for v in stat.readline().split()[1:8]]
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - fields[3] - fields[4]) / ticks, sum(fields) / ticks


def run_workflow(config: dict, folder: Path, folds_per_job: int, cores: str) -> dict:
    """Run the workflow from scratch in ``folder``; its wall time, training jobs and other processes' CPU share."""
    folder.mkdir(parents=True)
    # the run's working directory is ``folder``: data paths relative to the repository made absolute
    data = {k: str((REPO / v).resolve()) if k in ("root", "sheet") and v and (REPO / v).exists() else v
            for k, v in config["data"].items()}
    config = {**config, "data": data, "results": str(folder / "results"),
              "train": {**config.get("train", {}), "folds_per_job": folds_per_job}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(folder),
           "--configfile", str(folder / "config.yaml"), "--cores", cores, "--quiet"]
    (busy0, total0), own0 = cpu_ticks(), sum(os.times()[:4])
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (busy1, total1), own1 = cpu_ticks(), sum(os.times()[:4])
    if result.returncode != 0:
        sys.exit(f"snakemake failed in {folder}:\n{result.stderr[-3000:]}")
    exp = folder / "results" / config["experiment"]
    jobs = list((exp / "benchmarks" / "train").rglob("*.tsv"))
    job_seconds = sum(pd.read_csv(p, sep="\t")["s"].sum() for p in jobs)
    epoch_seconds = sum(pd.read_csv(p)["seconds"].sum() for p in exp.glob("models/*/fold*/history.csv"))
    others = max(0.0, (busy1 - busy0) - (own1 - own0)) / max(total1 - total0, 1e-9)
    return {"wall": wall, "jobs": len(jobs), "job_seconds": job_seconds, "outside": job_seconds - epoch_seconds,
            "others": others, "models": exp / "models"}


def largest_difference(a: Path, b: Path) -> tuple[float, int]:
    """Largest |p difference| over the predictions.csv files under two models folders, and their count."""
    worst, files = 0.0, sorted(a.glob("*/fold*/predictions.csv"))
    for path in files:
        x, y = pd.read_csv(path), pd.read_csv(b / path.relative_to(a))
        assert list(x["id"]) == list(y["id"]), path
        probs = [c for c in x.columns if c.startswith("p_")]
        worst = max(worst, float(np.abs(x[probs].to_numpy() - y[probs].to_numpy()).max()))
    return worst, len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--cores", default="all", help="snakemake --cores (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each setting, order alternating (default 1)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    args = parser.parse_args()

    raw = yaml.safe_load(args.config.read_text())
    validated = load_config(args.config)
    n_folds = len(fold_names(validated["data"], validated["cv"]))
    settings = {"a job per fold": 1, "a job per model": n_folds}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    print(f"{args.config.name}: {len(validated['models'])} models x {n_folds} folds; snakemake --cores {args.cores}, "
          f"profiles/default; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; "
          f"commit {commit}")

    work = Path(tempfile.mkdtemp(prefix="fold_jobs_", dir=args.work))
    runs = {name: [] for name in settings}
    order = list(settings)
    for i in range(args.repeat):
        for name in order if i % 2 == 0 else order[::-1]:
            run = run_workflow(raw, work / f"{i}_{settings[name]}", settings[name], args.cores)
            runs[name].append(run)
            print(f"{name:16s} (folds_per_job {settings[name]}): wall {run['wall']:6.1f} s   "
                  f"{run['jobs']:2d} training jobs {run['job_seconds']:6.1f} s, outside the epochs "
                  f"{run['outside']:5.1f} s   others {100 * run['others']:3.0f}% of the CPUs", flush=True)

    per_fold, per_model = (statistics.median(r["wall"] for r in runs[name]) for name in order)
    print(f"ratio wall, a job per fold / a job per model: {per_fold / per_model:.2f}"
          + (f" (medians of {args.repeat})" if args.repeat > 1 else ""))
    worst, n = largest_difference(runs[order[0]][0]["models"], runs[order[1]][0]["models"])
    print(f"largest |probability difference| between the two settings over {n} folds: {worst:.1e}")
    print(f"runs kept in {work}")


if __name__ == "__main__":
    main()
