"""Time to build the job graph (`snakemake -n`) of a sheet of N files, and what the content hashes cost.

Writes N small .npy recordings and a sample sheet into a temporary folder, then times, as wall
clock (median of ``--repeats`` runs where repeated):

- ``deepself.io.preflight.preflight`` alone with an empty hash cache (read the sheet, check every row
  and file, hash every file) and with a warm one (a stat per file);
- a whole dry run of the workflow (a fresh Python process: imports, config, preflight, the DAG of 5
  folds x 1 model), first with an empty hash cache, then warm;
- after the sheet and ingest stages have run for real: ``touch`` of every file, then a dry run of
  ingest's output (it must plan nothing: the files' content is unchanged), then a dry run after one
  byte of one file changed (it must plan ingest);
- with ``--gigabytes G``: G GB of larger recordings hashed with an empty cache (MB/s).

    .venv/bin/python benchmarks/dag_inputs.py --files 10000 --gigabytes 1
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

REPO = Path(__file__).resolve().parents[1]


def write_set(folder: Path, files: int, samples: int) -> None:
    (folder / "data").mkdir(parents=True)
    signal = np.zeros((samples, 1), np.float32)
    for i in range(files):
        signal[0, 0] = i  # every file's bytes differ
        np.save(folder / "data" / f"r{i:05d}.npy", signal)
    pd.DataFrame({"path": [f"r{i:05d}.npy" for i in range(files)],
                  "label": [f"c{i % 4}" for i in range(files)]}).to_csv(folder / "data" / "sheet.csv", index=False)


def raw_config(sheet: str) -> dict:
    return {"experiment": "dag", "data": {"adapter": "sheet", "sheet": sheet,
                                          "modalities": {"main": {"column": "path", "sample_rate": 100}}},
            "features": {"wave": {"kind": "raw"}}, "models": {"fnn": {"arch": "fnn", "feature": "wave"}}}


def snakemake(folder: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", *args, "--snakefile", str(REPO / "Snakefile"),
                             "--directory", str(folder), "--configfile", str(folder / "c.yaml"), "--cores", "1"],
                            cwd=REPO, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(result.stderr[-2000:])
    return elapsed, result


def timed_preflight(config: dict, cache: Path | None) -> float:
    from deepself.io.preflight import preflight

    start = time.perf_counter()
    preflight(config["data"], config["cv"], hash_cache=cache)
    return time.perf_counter() - start


def graph(args) -> None:
    from deepself.config import validate_config

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        write_set(folder, args.files, 100)
        raw = raw_config("data/sheet.csv")
        (folder / "c.yaml").write_text(yaml.safe_dump(raw))
        config = validate_config({**raw, "data": {**raw["data"], "sheet": str(folder / "data" / "sheet.csv")}})
        cache = folder / "bench-cache.sqlite"
        cold = timed_preflight(config, cache)
        warm = statistics.median(timed_preflight(config, cache) for _ in range(args.repeats))
        print(f"{args.files} files: preflight (sheet, files, content hashes) {cold:.2f} s with an empty hash cache, "
              f"{warm:.2f} s warm (median of {args.repeats})")

        first, _ = snakemake(folder, "-n")
        dry = statistics.median(snakemake(folder, "-n")[0] for _ in range(args.repeats))
        print(f"{args.files} files: snakemake -n (whole dry run) {first:.2f} s with an empty hash cache, "
              f"{dry:.2f} s warm (median of {args.repeats})")

        target = "results/dag/raw/main.h5"
        snakemake(folder, target)  # sheet and ingest, for real
        for path in (folder / "data").glob("*.npy"):
            path.touch()
        touched, result = snakemake(folder, "-n", target)
        planned = "nothing" if "Nothing to be done" in result.stdout else "jobs (WRONG)"
        again = statistics.median(snakemake(folder, "-n", target)[0] for _ in range(args.repeats))
        print(f"{args.files} files touched: snakemake -n plans {planned}, {touched:.2f} s (every file hashed again), "
              f"then {again:.2f} s (median of {args.repeats})")
        one = folder / "data" / "r00007.npy"
        data = bytearray(one.read_bytes())
        data[-1] ^= 0xFF
        one.write_bytes(bytes(data))
        _, result = snakemake(folder, "-n", target)
        print(f"one byte of one file changed: snakemake -n plans {'ingest' if 'ingest' in result.stdout else 'NOTHING (WRONG)'}")


def throughput(args) -> None:
    from deepself.config import validate_config

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        files = 100
        samples = int(args.gigabytes * 1e9 / 4 / files)
        write_set(folder, files, samples)
        size = sum(p.stat().st_size for p in (folder / "data").glob("*.npy"))
        raw = raw_config(str(folder / "data" / "sheet.csv"))
        elapsed = timed_preflight(validate_config(raw), folder / "bench-cache.sqlite")
        print(f"{files} files of {size / files / 1e6:.0f} MB ({size / 1e9:.2f} GB, in the page cache): preflight with an "
              f"empty hash cache {elapsed:.2f} s, {size / 1e6 / elapsed:.0f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gigabytes", type=float, default=0, help="also time hashing this much data")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    graph(args)
    if args.gigabytes:
        throughput(args)


if __name__ == "__main__":
    main()
