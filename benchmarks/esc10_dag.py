"""ESC-10 end to end: deepself's Snakemake workflow vs a plain script doing the same work, in one run.

Both sides do the same experiment: the 400 ESC-10 clips (5 s, 44.1 kHz), a log-Mel map per clip,
a torchvision network (ResNet18, random weights, its first convolution taking the map's one
channel) trained with Adam (lr 1e-3) on every official fold but the held-out one, inputs
standardised per Mel bin with statistics of the training part, the epoch with the best UAR on a
development split kept (20% of the training folds, stratified, clips of one freesound recording
on one side: scikit-learn's StratifiedGroupKFold, seed 0), then the held-out fold predicted; the
mean UAR over the held-out folds is printed for each side, so a reader sees that both learned.

- deepself: ``snakemake`` on this repository's workflow, in a temporary folder, with a generated
  config (adapter esc10, cv from_sheet); its DAG is sheet -> ingest -> features -> training ->
  report, with the training jobs that ``train.folds_per_job: auto`` makes: on a machine with a GPU
  one job trains the held-out folds in turn (its start-up paid once), on a CPU a one-thread job per
  fold (they train side by side on the cores). (A fuse job needs two models; this experiment has
  one.) Training runs at ``train.precision: auto``: bf16 and channels_last on a GPU that has bf16,
  fp32 on the CPU.
- plain: what one writes without deepself, in a child process of its own (as each deepself job
  is): librosa.load and librosa's log-Mel one clip at a time, then for each fold a plain fp32
  PyTorch loop on tensors held on the device, the same model, epochs and batch size.

Both get the same CPU threads (``--threads``: snakemake's ``--cores``, the plain side's
``torch.set_num_threads``); the audio files are read once before either runs, so that neither
pays for a cold disk. Printed: wall time of each side (start of the process to its end), the
ratio, each side's UAR, and the share of the CPUs that other processes used meanwhile.

The goal of issue 5 is on one GPU: deepself <= 60 s and >= 5x faster than the plain script, with
the defaults (30 epochs, 5 folds, resnet18, n_fft 2048, hop 512, 128 Mel bands). On a CPU, run a
reduced version, e.g.

    .venv/bin/python benchmarks/esc10_dag.py                                # the issue's run
    .venv/bin/python benchmarks/esc10_dag.py --device cpu --epochs 2 --folds 1 2 --n-mels 64 --hop-length 2048
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ESC10 = REPO.parent / "shared" / "data" / "esc10"
FOLDS = ("1", "2", "3", "4", "5")
DEV_FRACTION, SEED, LR, LENGTH_S, N_FFT = 0.2, 0, 1e-3, 5.0, 2048
RATE = 44100  # of every ESC-10 clip
AUDIO = (".ogg", ".wav", ".flac")


def clips(root: Path) -> list[Path]:
    """The clips of ``root`` (``<NNN - Class name>/<fold>-<freesound id>-<take>.ogg``), sorted by name."""
    return sorted((p for p in root.glob("*/*") if p.suffix.lower() in AUDIO), key=lambda p: p.stem)


def make_config(root: Path, results: Path, folds, epochs: int, batch_size: int, arch: str, device: str,
                n_mels: int, hop_length: int, train: dict | None = None) -> dict:
    """The deepself config of the experiment (``train`` adds or overrides training settings)."""
    return {
        "experiment": "esc10_dag",
        "results": str(results),
        "data": {"adapter": "esc10", "root": str(root),
                 "modalities": {"audio": {"column": "path", "kind": "audio", "length_s": LENGTH_S}}},
        "cv": {"folds": "from_sheet", "test_folds": [str(f) for f in folds], "dev_fraction": DEV_FRACTION,
               "seed": SEED},
        "features": {"logmel": {"kind": "logmel", "n_fft": N_FFT, "hop_length": hop_length, "n_mels": n_mels}},
        "train": {"optimizer": "adam", "lr": LR, "batch_size": batch_size, "epochs": epochs, "device": device,
                  "normalize": "feature", "seed": SEED, **(train or {})},
        "models": {arch: {"arch": "torchvision", "feature": "logmel", "args": {"name": arch, "weights": None}}},
    }


# --- the plain script ----------------------------------------------------------------------------

def logmel(path: Path, n_mels: int, hop_length: int):
    """librosa's log-Mel of one clip, cut or padded to 5 s, as deepself's defaults make it (dB, top_db 80)."""
    import librosa

    y, sr = librosa.load(path, sr=None, mono=True)
    y = librosa.util.fix_length(y, size=round(LENGTH_S * sr))
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=N_FFT, hop_length=hop_length, n_mels=n_mels)
    return librosa.power_to_db(mel, ref=1.0, top_db=80.0)


def dev_split(labels, groups, fraction: float = DEV_FRACTION, seed: int = SEED):
    """Indices (fit, dev): the first split of a shuffled StratifiedGroupKFold with 1/fraction splits."""
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=max(2, round(1 / fraction)), shuffle=True, random_state=seed)
    return next(splitter.split(np.zeros(len(labels)), labels, groups))


def build_model(arch: str, n_classes: int):
    import torch
    import torchvision

    model = torchvision.models.get_model(arch, weights=None, num_classes=n_classes)
    model.conv1 = torch.nn.Conv2d(1, model.conv1.out_channels, model.conv1.kernel_size, model.conv1.stride,
                                  model.conv1.padding, bias=False)
    return model


def train_and_test(x, y, fit, dev, test, arch: str, n_classes: int, epochs: int, batch_size: int, device) -> dict:
    """Train on ``fit``, keep the epoch of best dev UAR, return the held-out UAR of ``test``."""
    import numpy as np
    import torch
    from sklearn.metrics import recall_score

    torch.manual_seed(SEED)
    mean = x[fit].mean(dim=(0, 3), keepdim=True)
    std = x[fit].std(dim=(0, 3), keepdim=True, correction=0).clamp_min(1e-8)
    x = ((x - mean) / std).to(device)
    y = y.to(device)
    model = build_model(arch, n_classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    fit_t = torch.as_tensor(fit, device=device)

    @torch.no_grad()
    def predict(index):
        model.eval()
        return torch.cat([model(x[index[i : i + 4 * batch_size]]).argmax(1)
                          for i in range(0, len(index), 4 * batch_size)]).cpu().numpy()

    def uar(index):
        return recall_score(y[index].cpu().numpy(), predict(index), average="macro", zero_division=0)

    best = (-1.0, 0, None)
    for epoch in range(1, epochs + 1):
        model.train()
        order = fit_t[torch.randperm(len(fit_t), device=device)]
        for i in range(0, len(order), batch_size):
            batch = order[i : i + batch_size]
            if len(batch) < 2:
                continue  # batch norm needs two samples
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        dev_uar = uar(dev)
        if dev_uar > best[0]:
            best = (dev_uar, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    return {"uar": float(uar(test)), "best_epoch": best[1], "dev_uar": float(best[0]), "n_fit": len(fit),
            "n_dev": len(dev), "n_test": len(test), "classes": int(np.unique(y[fit].cpu().numpy()).size)}


def plain(root: str | Path, folds, epochs: int, batch_size: int, arch: str, device: str, threads: int, n_mels: int,
          hop_length: int) -> dict:
    """The whole experiment done the obvious way; per-fold results and the mean UAR."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    paths = clips(Path(root))
    labels = [p.parent.name.split(" - ", 1)[-1] for p in paths]
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(label) for label in labels])
    fold = np.array([p.stem.split("-")[0] for p in paths])
    group = np.array([p.stem.split("-")[1] for p in paths])
    start = time.perf_counter()
    x = torch.from_numpy(np.stack([logmel(p, n_mels, hop_length) for p in paths])[:, None].astype(np.float32))
    stages = {"features": time.perf_counter() - start}
    results = {}
    for held_out in folds:
        start = time.perf_counter()
        test = np.flatnonzero(fold == str(held_out))
        pool = np.flatnonzero(fold != str(held_out))
        fit, dev = dev_split(y[pool].numpy(), group[pool])
        results[str(held_out)] = train_and_test(x, y, pool[fit], pool[dev], test, arch, len(classes), epochs,
                                                batch_size, torch.device(device))
        stages[f"fold {held_out}"] = time.perf_counter() - start
    return {"folds": results, "uar_mean": float(np.mean([r["uar"] for r in results.values()])), "stages": stages}


# --- timing ----------------------------------------------------------------------------------------

def _cpu_seconds() -> tuple[float, float, float]:
    """(busy, total) CPU seconds of the machine (from /proc/stat) and CPU seconds of finished children."""
    with open("/proc/stat") as stat:
        fields = [float(v) / os.sysconf("SC_CLK_TCK") for v in stat.readline().split()[1:9]]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(fields) - fields[3] - fields[4], sum(fields), children.ru_utime + children.ru_stime


def job_seconds(log: Path) -> dict[str, float]:
    """Seconds of snakemake's jobs summed per rule, from its log (a job's start and end stamps, 1-s resolution)."""
    stamp, rule, started, seconds = None, None, {}, {}
    for line in log.read_text().splitlines():
        if m := re.fullmatch(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", line.strip()):
            stamp = datetime.strptime(m[1], "%a %b %d %H:%M:%S %Y")
        elif m := re.fullmatch(r"(?:local)?rule (\w+):", line.strip()):
            rule = m[1]
        elif (m := re.fullmatch(r"jobid: (\d+)", line.strip())) and rule:
            started[m[1]], rule = (rule, stamp), None
        elif m := re.match(r"Finished jobid: (\d+)", line.strip()):
            name, begin = started[m[1]]
            seconds[name] = seconds.get(name, 0.0) + (stamp - begin).total_seconds()
    seconds.pop("all", None)
    return seconds


def timed(command: list[str], log: Path) -> tuple[float, float]:
    """Run ``command`` (output to ``log``); its wall seconds and the share of the CPUs others used meanwhile."""
    before = _cpu_seconds()
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    busy, total, own = (after - b for after, b in zip(_cpu_seconds(), before))
    if code != 0:
        sys.exit(f"{' '.join(command[:3])} ... failed (exit {code}); the end of {log}:\n"
                 + "".join(log.read_text().splitlines(keepends=True)[-40:]))
    return wall, max(0.0, busy - own) / max(total, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ESC10, help="the ESC-10 folder (default: ../shared/data/esc10)")
    parser.add_argument("--folds", nargs="+", default=list(FOLDS), choices=FOLDS, help="held-out folds (default: all 5)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--arch", default="resnet18", help="a torchvision ResNet (default resnet18)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when there is one)")
    parser.add_argument("--n-mels", type=int, default=128)
    parser.add_argument("--hop-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="CPU threads of each side: snakemake --cores and torch.set_num_threads (default: all)")
    parser.add_argument("--gpu-jobs", type=int, default=1, help="deepself training jobs at once (--resources gpu=N)")
    parser.add_argument("--train", type=json.loads, default={}, help="extra deepself train settings, as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:  # the child process of the plain side
        print(json.dumps(plain(**json.loads(args.plain))))
        return

    import pandas as pd  # here, not at the top: the plain side's child process does not need them
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    paths = clips(args.root)
    if not paths:
        print(f"ESC-10 skipped: no clips under {args.root} (give the folder with --root)")
        return
    for path in paths:  # the page cache: neither side reads from a cold disk
        path.read_bytes()
    frames = 1 + round(LENGTH_S * RATE) // args.hop_length
    print(f"ESC-10: {len(paths)} clips ({args.root}); held-out folds {' '.join(args.folds)}; {args.arch}, "
          f"{args.epochs} epochs, batch {args.batch_size}; log-Mel {args.n_mels} x {frames} (n_fft {N_FFT}, hop "
          f"{args.hop_length}); device {device}"
          f"{f' ({torch.cuda.get_device_name()})' if device == 'cuda' else ''}; {args.threads} CPU threads a side; "
          f"torch {torch.__version__}", flush=True)
    if device != "cuda":
        print("no GPU: the issue's goal (one GPU: <= 60 s, >= 5x the plain script) is not measured by this run")

    work = Path(tempfile.mkdtemp(prefix="deepself-esc10-"))
    try:
        config = make_config(args.root.resolve(), work / "results", args.folds, args.epochs, args.batch_size,
                             args.arch, device, args.n_mels, args.hop_length, args.train)
        (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        ours, ours_busy = timed([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                                 "--directory", str(work), "--configfile", str(work / "config.yaml"),
                                 "--cores", str(args.threads), "--resources", f"gpu={args.gpu_jobs}"],
                                work / "snakemake.log")
        report = work / "results" / "esc10_dag" / "report"
        ours_uar = pd.read_csv(report / "summary.csv").set_index("system").loc[args.arch, "uar_mean"]
        per_fold = pd.read_csv(report / "uar_per_fold.csv", dtype={"fold": str})
        per_fold = per_fold[per_fold["system"] == args.arch]
        jobs = job_seconds(work / "snakemake.log")

        spec = {"root": str(args.root), "folds": args.folds, "epochs": args.epochs, "batch_size": args.batch_size,
                "arch": args.arch, "device": device, "threads": args.threads, "n_mels": args.n_mels,
                "hop_length": args.hop_length}
        theirs, theirs_busy = timed([sys.executable, __file__, "--plain", json.dumps(spec)], work / "plain.log")
        result = json.loads((work / "plain.log").read_text().strip().splitlines()[-1])
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    def folds(uars: dict) -> str:
        return ", ".join(f"{f}: {u:.3f}" for f, u in uars.items())

    ours_folds = dict(zip(per_fold["fold"], per_fold["uar"]))
    print(f"deepself (snakemake DAG)     : {ours:8.1f} s   mean UAR {ours_uar:.3f} (fold {folds(ours_folds)})"
          f"   others {100 * ours_busy:.0f}%")
    print(f"plain script (librosa, loop) : {theirs:8.1f} s   mean UAR {result['uar_mean']:.3f} "
          f"(fold {folds({f: r['uar'] for f, r in result['folds'].items()})})   others {100 * theirs_busy:.0f}%")
    print(f"plain / deepself             : {theirs / ours:8.2f}x  (goal on one GPU: >= 5x, deepself <= 60 s)")
    print("deepself jobs, seconds summed per rule: " + ", ".join(f"{k} {v:.0f}" for k, v in jobs.items()))
    print("plain stages, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["stages"].items()))


if __name__ == "__main__":
    main()
