"""deepself on five time-series sets against aeon's own rockets, as a new user would run both.

For each of five development sets that ship inside the aeon wheel (ArrowHead, OSULeaf,
ItalyPowerDemand, PickupGestureWiimoteZ, BasicMotions), on its official train/test split:

1. writes the recordings as a user would: one ``.npy`` (time, channels) per recording and a sample
   sheet with ``fold`` = train or test (unequal lengths, PickupGestureWiimoteZ's, stay unequal:
   deepself zero-pads them to the longest, and so does the aeon side here);
2. writes a config (``cv.folds: from_sheet``, ``cv.test_folds: [test]``: train on train, score
   test; the development split of the train part chooses what it chooses) with ``minirocket``,
   ``multirocket``, ``hydra``, ``multirocket_hydra``, a light neural model (``lite``;
   ``--systems`` adds ``cnn1d`` and the papers' five-seed ensembles ``litetime`` and ``inceptiontime``)
   and a ``select`` fusion of them, and
   runs ``snakemake --cores 2`` on it in a fresh process;
3. runs aeon's ``MiniRocketClassifier``, ``MultiRocketClassifier``, ``HydraClassifier`` and
   ``MultiRocketHydraClassifier`` (random_state 0: scaled features,
   ``RidgeClassifierCV(np.logspace(-3, 3, 10))``) each in a fresh ``python`` process on the same arrays.

It prints per set every deepself system's UAR on the test split, aeon's UARs, the share of test
recordings where deepself's rocket gives aeon's label, the wall time of each rocket's training job
against aeon's whole fresh process (imports, fit, predict), and the whole workflow's time; then
the means over the sets. These
are development sets: nothing here is a held-out fold of a shipped experiment.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tsc_parity.py [--sets OSULeaf ...] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
SETS = ["ArrowHead", "OSULeaf", "ItalyPowerDemand", "PickupGestureWiimoteZ", "BasicMotions"]
# LITE (Ismail-Fawaz et al. 2023) with its paper's optimiser and batch; 150 epochs, not the paper's 1,500,
# the development split keeping the best (a CPU budget); cnn1d: the README's 1-D CNN
# litetime / inceptiontime: the papers' recipes (LITETime, Ismail-Fawaz et al. 2023; InceptionTime, Ismail Fawaz
# et al. 2020): five seeds averaged, 1,500 epochs, Adam 1e-3, batch 64, the rate halved after 50 epochs without
# progress (here: of the development UAR; the papers watch the training loss); a GPU's work beyond the smallest sets
PAPER = {"epochs": 1500, "batch_size": 64, "lr": 0.001, "scheduler": "plateau", "gamma": 0.5, "plateau_patience": 50}
NEURAL = {"lite": {"arch": "lite", "feature": "raw", "train": {"epochs": 150, "batch_size": 64, "lr": 0.001}},
          "litetime": {"arch": "lite", "feature": "raw", "seeds": 5, "train": PAPER},
          "inceptiontime": {"arch": "inception", "feature": "raw", "seeds": 5, "train": PAPER},
          "cnn1d": {"arch": "cnn1d", "feature": "raw", "args": {"channels": [32, 64, 128], "kernel": 7,
                                                                  "padding": 3}, "train": {"epochs": 60}}}

AEON_SCRIPT = r"""
import json, sys, time
import numpy as np
from sklearn.metrics import balanced_accuracy_score
from aeon.classification import convolution_based
d = np.load(sys.argv[1], allow_pickle=False)
start = time.perf_counter()
clf = getattr(convolution_based, sys.argv[2])(random_state=0).fit(d["x_train"], d["y_train"])
pred = clf.predict(d["x_test"])
json.dump({"fit_seconds": time.perf_counter() - start, "uar": balanced_accuracy_score(d["y_test"], pred),
           "pred": [str(p) for p in pred]}, open(sys.argv[3], "w"))
"""
AEON = {"minirocket": "MiniRocketClassifier", "multirocket": "MultiRocketClassifier", "hydra": "HydraClassifier",
        "multirocket_hydra": "MultiRocketHydraClassifier"}
# the 20-line script of the baseline issue (MiniRocket or MultiRocket + ridge): the bar "aeon's best" names
SCRIPT_ROCKETS = ("minirocket", "multirocket")


def load(name: str):
    from aeon.datasets import load_classification

    parts = {}
    for split in ("train", "test"):
        x, y = load_classification(name, split=split)
        parts[split] = ([np.asarray(r, dtype=np.float32) for r in x], [str(v) for v in y])
    return parts


def padded(recordings: list[np.ndarray], length: int) -> np.ndarray:
    return np.stack([np.pad(r, [(0, 0), (0, length - r.shape[-1])]) for r in recordings])


def write_user_files(folder: Path, parts) -> pd.DataFrame:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rows = []
    for split, (recordings, labels) in parts.items():
        for i, (x, label) in enumerate(zip(recordings, labels)):
            path = f"{split}_{i:04d}.npy"  # relative to the sheet's folder
            np.save(folder / "data" / path, x.T)  # (time, channels), as the README asks
            rows.append({"id": f"{split}_{i:04d}", "path": path, "label": label, "fold": split})
    sheet = pd.DataFrame(rows)
    sheet.to_csv(folder / "data" / "sheet.csv", index=False)
    return sheet


def config_for(name: str, systems: list[str]) -> dict:
    models = {}
    for system in systems:
        if system in AEON:
            models[system] = {"arch": system, "feature": "raw"}  # train.seed 0: random_state 0
        elif system in NEURAL:
            models[system] = NEURAL[system]
    return {"experiment": name,
            "data": {"adapter": "sheet", "sheet": "data/sheet.csv",
                     "modalities": {"main": {"column": "path", "sample_rate": 1}}},
            "cv": {"folds": "from_sheet", "test_folds": ["test"], "seed": 0},
            "features": {"raw": {"kind": "raw"}},
            "train": {"threads": 1, "seed": 0},
            "models": models,
            "fusions": {"select": {"models": list(models), "method": "select"}} if len(models) > 1 else {}}


def run_deepself(folder: Path, config: dict) -> tuple[float, subprocess.CompletedProcess]:
    (folder / "c.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                             "--directory", str(folder), "--configfile", str(folder / "c.yaml"), "--cores", "2"],
                            cwd=REPO, capture_output=True, text=True)
    return time.perf_counter() - start, result


def run_aeon(folder: Path, parts) -> dict:
    length = max(r.shape[-1] for rs, _ in parts.values() for r in rs)
    arrays = folder / "aeon.npz"
    np.savez(arrays, x_train=padded(parts["train"][0], length), y_train=np.array(parts["train"][1]),
             x_test=padded(parts["test"][0], length), y_test=np.array(parts["test"][1]))
    results = {}
    for rocket, classifier in AEON.items():  # each in a fresh process, timed whole (imports, numba's cache)
        out = folder / f"aeon_{rocket}.json"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", AEON_SCRIPT, str(arrays), classifier, str(out)], check=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"})
        results[rocket] = {**json.loads(out.read_text()), "seconds": time.perf_counter() - start}
    return results


def job_seconds(results: Path, model: str) -> float:
    """Wall time of the model's training jobs (Snakemake's benchmark files), summed."""
    return sum(float(pd.read_csv(p, sep="\t")["s"].iloc[0]) for p in (results / "benchmarks" / "train" / model).glob("*.tsv"))


def one_set(name: str, work: Path, systems: list[str]) -> dict:
    folder = work / name
    parts = load(name)
    sheet = write_user_files(folder, parts)
    aeon = run_aeon(folder, parts)
    elapsed, result = run_deepself(folder, config_for(name, systems))
    if result.returncode != 0:
        sys.exit(f"{name}: snakemake failed\n{result.stderr[-3000:]}")
    results = folder / "results" / name
    summary = pd.read_csv(results / "report" / "summary.csv")
    row = {"set": name, "workflow_s": elapsed}
    for _, r in summary.iterrows():
        row[r["system"]] = 100 * r["uar_mean"]
    test_ids = sheet.loc[sheet["fold"] == "test", "id"].tolist()
    for rocket in AEON:
        row[f"aeon_{rocket}"] = 100 * aeon[rocket]["uar"]
        row[f"aeon_{rocket}_s"] = aeon[rocket]["seconds"]
        if rocket in systems:
            ours = pd.read_csv(results / "models" / rocket / "foldtest" / "predictions.csv", dtype=str).set_index("id")
            row[f"{rocket}_agree"] = 100 * np.mean([ours.loc[i, "pred"] == p for i, p in zip(test_ids, aeon[rocket]["pred"])])
            row[f"{rocket}_job_s"] = job_seconds(results, rocket)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=SETS, choices=SETS)
    parser.add_argument("--systems", nargs="+", default=[*AEON, "lite"], choices=[*AEON, *NEURAL])
    parser.add_argument("--work", help="folder for the data and results (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        rows = []
        for name in args.sets:
            row = one_set(name, work, args.systems)
            rows.append(row)
            print(" ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    table = pd.DataFrame(rows).set_index("set")
    pd.set_option("display.width", 200)
    print(table.round(1).to_string())
    print("mean over the sets:")
    print(table.mean().round(1).to_string())
    ours = [c for c in table.columns if c in (*args.systems, "select")]
    best_ours = table[ours].max(axis=1)
    best_aeon = table[[f"aeon_{r}" for r in SCRIPT_ROCKETS]].max(axis=1)
    print(f"deepself's best system {best_ours.mean():.1f} against aeon's best of MiniRocket and MultiRocket "
          f"{best_aeon.mean():.1f} (mean over {len(table)} sets); below it on {int((best_ours < best_aeon).sum())} set(s)")
    best_all = table[[f"aeon_{r}" for r in AEON]].max(axis=1)
    print(f"aeon's best of all four rockets {best_all.mean():.1f}; deepself below it on "
          f"{int((best_ours < best_all).sum())} set(s)")
    best_member = table[[c for c in args.systems if c in table]].max(axis=1)
    if "select" in table:
        print(f"select {table['select'].mean():.1f} against its best member per set {best_member.mean():.1f}")


if __name__ == "__main__":
    main()
