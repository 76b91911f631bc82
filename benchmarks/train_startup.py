"""What a job spends before its work: every stage job's start-up, and a training job's set-up and resume.pt.

First, each stage job of the workflow, timed to its first log line: a small experiment
(BasicMotions' accelerometer from the aeon wheel, 2 folds, a band-pass, a spectrogram, a fully
connected network on the signals and a torchvision ResNet18 on the maps, 1 epoch, their mean
fusion) is run once with snakemake in a temporary folder; then the command of one job of each
rule (``deepself --log LOG <stage> ...``, as snakemake runs it, from ``snakemake -n -p``) is
run again ``--repeats`` times in a fresh process, and the time from its start to the first line
in LOG (polled every 2 ms) and to its exit is printed beside ``python -c "import torch"`` and
``python -c pass`` of the same sitting. Goals: a training job's first line within ``import torch``
+ 0.5 s; the sheet, ingest, fuse and report jobs, which need no torch, within 0.8 s.

Then a training job in detail, in a fresh child process per measurement (a job's start-up is a
fresh interpreter's), on a store shaped like the ESC-10 benchmark's maps (400 samples, 1 x 64 x 108 log-Mel, 10 classes) and
a torchvision ResNet18, and prints:

- the interpreter alone, ``import deepself.cli`` (what every stage's command pays), ``import
  deepself.training.fold`` (what a training job pays), and the largest imports under it;
- reading the sheet and the store once (:class:`deepself.training.data.TrainingData`), a fold's split and
  set-up (:func:`deepself.training.loop.set_up`), one epoch, and one write of ``resume.pt`` (with Adam's
  state) with its size;
- what ``resume.pt`` would cost written after every epoch (the old behaviour) and what it costs
  under :class:`deepself.training.resume.Resume`'s rule (every ``resume_every_s`` seconds, never sooner than
  20 times the last write took), over a run of ``--epochs`` such epochs.

    .venv/bin/python benchmarks/train_startup.py
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = """
experiment: startup
data:
  adapter: aeon
  root: BasicMotions
  dims: {accel: [0, 1, 2]}
  modalities:
    accel: {column: accel, kind: sensor, sample_rate: 10, filter: {band: [0.3, 4.5]}}
cv: {folds: 2, seed: 0}
features:
  wave: {kind: raw}
  spec: {kind: spectrogram, n_fft: 32, hop_length: 4}
train: {epochs: 1, batch_size: 16, folds_per_job: 1}
models:
  fnn: {arch: fnn, feature: wave, args: {hidden: [16]}}
  resnet18: {arch: torchvision, feature: spec, args: {name: resnet18, weights: null}}
fusions:
  both: {models: [fnn, resnet18], method: mean}
"""
# the rules timed, in the workflow's order, with the goal of each (None: none set)
RULES = {"sheet": 0.8, "ingest": 0.8, "bandpass": None, "features": None, "train fnn": "torch",
         "train resnet18": "torch", "fuse": 0.8, "report": 0.8}

CHILD = r"""
import json, sys
stage = sys.argv[1]
if stage == "cli":
    import deepself.cli  # noqa: F401
elif stage == "train":
    import deepself.training.fold  # noqa: F401
print(json.dumps({"stage": stage}))
"""

JOB = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
import torch
from deepself.training.data import TrainingData
from deepself.training.loop import set_up, train_epoch
from deepself.training.resume import Progress, Resume
from deepself.config import validate_config
t_import = time.perf_counter() - t0
folder, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
train = validate_config({"experiment": "t", "data": {"adapter": "digits"}, "features": {"f": {"kind": "raw"}},
                         "models": {"m": {"arch": "fnn", "feature": "f"}}})["train"]
spec = {"name": "resnet18", "arch": "torchvision", "feature": "maps", "classes": None, "dev_fraction": 0.2,
        "cv_seed": 0, "args": {"name": "resnet18", "weights": None},
        "train": {**train, "batch_size": 32, "device": "cpu"}}
t = time.perf_counter(); data = TrainingData(folder + "/samples.csv", folder + "/maps.h5", None)
t_read = time.perf_counter() - t
t = time.perf_counter(); split = data.split("1", spec); trainer = set_up(data, split, spec)
t_setup = time.perf_counter() - t
t = time.perf_counter(); train_epoch(trainer, data, split, spec["train"]); t_epoch = time.perf_counter() - t
resume = Resume(Path(folder) / "resume.pt", "x", 300)
t = time.perf_counter(); resume.save(trainer, Progress()); t_save = time.perf_counter() - t
size = resume.path.stat().st_size
print(json.dumps({"import": t_import, "read": t_read, "setup": t_setup, "epoch": t_epoch, "save": t_save,
                  "size": size, "n_fit": len(split.fit)}))
"""


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"a measuring child process failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def largest_imports(module: str, n: int = 6) -> list[tuple[str, float]]:
    """The top-level imports under ``module`` that took longest (``python -X importtime``), in seconds."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True)
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        indent = len(name) - len(name.lstrip())
        if cumulative.strip().isdigit() and 2 <= indent <= 3:  # direct imports of the module
            rows.append((name.strip(), int(cumulative) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:n]


def write_store(folder: Path) -> None:
    import numpy as np
    import pandas as pd

    from deepself.io.store import create_store

    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=(n, 1, 64, 108)).astype(np.float32)
    ids = [f"s{i:03d}" for i in range(n)]
    with create_store(folder / "maps.h5", n, x.shape[1:], {"kind": "signal", "layout": "CFT"}) as w:
        w.write(ids, x)
    pd.DataFrame({"id": ids, "label": [f"c{i % 10}" for i in range(n)],
                  "fold": [str(i // 10 % 5 + 1) for i in range(n)]}).to_csv(folder / "samples.csv", index=False)


def _median_run(argv: list[str], repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def _first_line(command: str, folder: Path, env: dict) -> tuple[float, float]:
    """(seconds to the first line in the command's --log file, seconds to its exit) of one run."""
    words = shlex.split(command)
    log = Path(folder, words[words.index("--log") + 1])
    log.unlink(missing_ok=True)
    if "--out" in words:  # a stage that finds its output current says so and stops: make it work
        Path(folder, words[words.index("--out") + 1]).unlink(missing_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, shell=True, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    first = None
    while process.poll() is None:
        if first is None and log.exists() and b"\n" in log.read_bytes():
            first = time.perf_counter() - started
        time.sleep(0.002)
    ended = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"{command[:200]} failed:\n{process.stderr.read()[-2000:]}")
    if first is None:  # written after the last look, or never (nan)
        first = ended if b"\n" in log.read_bytes() else float("nan")
    return first, ended


def _job_commands(folder: Path, env: dict) -> dict[str, str]:
    """One shell command per timed rule, as snakemake runs them (its dry run with -p, every job forced)."""
    base = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(folder),
            "--configfile", str(folder / "c.yaml"), "--cores", "2"]
    subprocess.run(base, check=True, capture_output=True, env=env)
    dry = subprocess.run([*base, "-n", "-p", "--forceall"], check=True, capture_output=True, text=True, env=env)
    commands = {}
    for line in dry.stdout.splitlines():
        if not line.startswith("Shell command: deepself "):
            continue
        command = line[len("Shell command: "):]
        words = shlex.split(command)
        stage = words[words.index("--log") + 2]
        name = {"filter": "bandpass"}.get(stage, stage)
        if stage == "train":
            name = f"train {json.loads(words[words.index('--spec') + 1])['name']}"
        commands.setdefault(name, command)
    return commands


def stage_jobs(repeats: int) -> None:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    python = _median_run([sys.executable, "-c", "pass"], repeats)
    torch_s = _median_run([sys.executable, "-c", "import torch"], repeats)
    print(f"python -c pass              : {python:6.2f} s (median of {repeats})")
    print(f"python -c 'import torch'    : {torch_s:6.2f} s (median of {repeats})")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "c.yaml").write_text(EXPERIMENT)
        commands = _job_commands(folder, env)
        print(f"stage jobs of a small experiment (BasicMotions accelerometer, 2 folds), median of {repeats} runs each:")
        print(f"{'job':16s} {'first log line':>14s} {'exit':>7s}   goal")
        for name, goal in RULES.items():
            runs = [_first_line(commands[name], folder, env) for _ in range(repeats)]
            first, ended = (statistics.median(r[i] for r in runs) for i in (0, 1))
            limit = torch_s + 0.5 if goal == "torch" else goal
            verdict = "" if limit is None else (f"<= {limit:.2f} s{' (import torch + 0.5)' if goal == 'torch' else ''}: "
                                                f"{'met' if first <= limit else 'MISSED'}")
            print(f"{name:16s} {first:12.2f} s {ended:5.2f} s   {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the run whose resume cost is printed")
    parser.add_argument("--repeats", type=int, default=3, help="fresh interpreters per import figure (median)")
    parser.add_argument("--stages-only", action="store_true", help="time the stage jobs only, not the training detail")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    stage_jobs(args.repeats)
    if args.stages_only:
        return

    for stage, label in (("python", "interpreter alone"), ("cli", "import deepself.cli"),
                         ("train", "import deepself.training.fold")):
        runs = []
        for _ in range(args.repeats):  # the whole child process: start-up, imports, exit
            started = time.perf_counter()
            child(CHILD, stage)
            runs.append(time.perf_counter() - started)
        runs.sort()
        print(f"{label:28s}: {runs[len(runs) // 2]:6.2f} s (median of {args.repeats} fresh interpreters, start to exit)")
    print("largest imports under deepself.training.fold: "
          + ", ".join(f"{name} {s:.2f} s" for name, s in largest_imports("deepself.training.fold")))
    with tempfile.TemporaryDirectory() as tmp:
        write_store(Path(tmp))
        r = child(JOB, tmp, str(args.threads))
    print(f"training job, ResNet18 on 400 maps of 1 x 64 x 108, {args.threads} threads: imports {r['import']:.2f} s, "
          f"reading sheet and store {r['read']:.2f} s, split and set-up {r['setup']:.2f} s, one epoch "
          f"({r['n_fit']} samples) {r['epoch']:.2f} s, one resume.pt write {r['save']:.2f} s "
          f"({r['size'] / 2**20:.0f} MiB)")
    total = args.epochs * r["epoch"]
    every_epoch = args.epochs * r["save"]
    interval = max(300.0, 20 * r["save"])
    writes = int(total // interval)
    print(f"over {args.epochs} such epochs ({total:.0f} s): resume.pt after every epoch costs {every_epoch:.1f} s "
          f"({100 * every_epoch / total:.1f}% of training); every {interval:.0f} s (the default rule) "
          f"{writes} writes, {writes * r['save']:.1f} s ({100 * writes * r['save'] / total:.1f}%)")


if __name__ == "__main__":
    main()
