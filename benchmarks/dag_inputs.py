"""Time to build the job graph (`snakemake -n`) of a sheet of N files, and the share of the input check.

Writes N small .npy recordings and a sample sheet into a temporary folder, then times, as wall
clock: ``deepself.io.sheet.preflight`` alone (read the sheet, check every row and file, and stat
every file for the digest that reruns ingest when a file changes), and a whole dry run of the
workflow on it (a fresh Python process: imports, config, preflight, the DAG of 5 folds x 1 model),
median of ``--repeats`` runs each.

    .venv/bin/python benchmarks/dag_inputs.py --files 10000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from deepself.config import validate_config
    from deepself.io.sheet import preflight

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "data").mkdir()
        signal = np.zeros((100, 1), np.float32)
        for i in range(args.files):
            np.save(folder / "data" / f"r{i:05d}.npy", signal)
        pd.DataFrame({"path": [f"r{i:05d}.npy" for i in range(args.files)],
                      "label": [f"c{i % 4}" for i in range(args.files)]}).to_csv(folder / "data" / "sheet.csv",
                                                                                 index=False)
        raw = {"experiment": "dag", "data": {"adapter": "sheet", "sheet": "data/sheet.csv",
                                             "modalities": {"main": {"column": "path", "sample_rate": 100}}},
               "features": {"wave": {"kind": "raw"}}, "models": {"fnn": {"arch": "fnn", "feature": "wave"}}}
        (folder / "c.yaml").write_text(yaml.safe_dump(raw))

        config = validate_config({**raw, "data": {**raw["data"], "sheet": str(folder / "data" / "sheet.csv")}})
        checks = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            preflight(config["data"], config["cv"])
            checks.append(time.perf_counter() - start)

        dry = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"),
                                     "--directory", str(folder), "--configfile", str(folder / "c.yaml")],
                                    cwd=REPO, capture_output=True, text=True)
            dry.append(time.perf_counter() - start)
            if result.returncode != 0:
                sys.exit(result.stderr[-2000:])
    print(f"{args.files} files: preflight (sheet, files, digest) {statistics.median(checks):.2f} s; "
          f"snakemake -n (whole dry run) {statistics.median(dry):.2f} s; median of {args.repeats}")


if __name__ == "__main__":
    main()
