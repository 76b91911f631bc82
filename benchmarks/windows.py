"""Windows per second and peak memory on Bonn: windowed against whole recordings, side by side in one run.

Every case runs in its own child process on one thread, so that its peak resident memory
(``ru_maxrss``) is its own. A child reads the 500 Bonn segments (4097 samples each, float32: 8.2 MB),
builds the Bonn config's ``cnn1d`` (random weights: only time and memory are measured) and puts
every input through it in eval mode, batches of 128, as ``predict`` and the trainer's evaluation do:

- ``whole``: the 500 segments as they are;
- ``windows hop H``: windows of 512 samples (2.95 s, ``config/bonn.yaml``) every ``H`` samples,
  cut batch by batch from the segments by :class:`deepself.training.windows.Windows` (lazily, as training
  and prediction cut them), then aggregated per segment (``mean``);
- ``materialised hop H``: the same windows cut into one tensor before the loop, for contrast: what
  lazy cutting avoids.

Printed per case: inputs (segments or windows), seconds of the loop, inputs/s and segments/s,
peak RSS of the child, and how much the loop raised it above the peak after reading the data and
building the model.

How memory grows with the number of windows W: lazily, by 16 bytes per window for its (segment,
start) pair, plus the window probabilities kept until the segments are decided (4 bytes per class,
20 bytes with 5 classes), plus one batch of windows and its activations, whatever W is; the
segments themselves are held once. Materialised windows cost ``channels x length x 4`` bytes each
(2 KB here), 57 times the segments' own size at hop 64. The printed growth of the loop shows both.

    .venv/bin/python benchmarks/windows.py [--bonn DIR] [--hops 512 256 64] [--batch 128]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BONN = ROOT.parent / "shared" / "data" / "bonn"
LENGTH = 512
CNN1D = {"channels": [16, 32, 64, 64], "kernel": 7, "padding": 3, "pool": 4, "hidden": [64], "dropout": 0.3}


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux gives ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_bonn(root: Path) -> np.ndarray:
    """The Bonn segments as (N, 1, T) float32, in the order of their paths."""
    paths = sorted(p for p in root.glob("*/*") if p.suffix.lower() == ".txt")
    if not paths:
        sys.exit(f"windows.py: no Bonn segments under {root}/<set>/*.txt (give --bonn)")
    return np.stack([np.loadtxt(p, dtype=np.float32) for p in paths])[:, None, :]


def child(case: str, hop: int, root: str, batch: int) -> None:
    """Run one case in this process and print its figures as one JSON line."""
    import torch

    from deepself.inference import Forward, predict_proba
    from deepself.models import create_model
    from deepself.training import windows

    torch.set_num_threads(1)
    x = torch.from_numpy(read_bonn(Path(root)))
    n_times = x.shape[-1] if case == "whole" else LENGTH
    model = create_model("cnn1d", n_chans=1, n_freqs=None, n_times=n_times, n_outputs=5, **CNN1D)
    forward = Forward()
    before = peak_mb()
    started = time.perf_counter()
    if case == "whole":
        inputs = x
    else:
        recording, start = windows.index(np.arange(len(x)), x.shape[-1], LENGTH, hop)
        inputs = windows.Windows(x, recording, start, LENGTH)
        if case == "materialised":
            inputs = inputs[np.arange(len(inputs))]
    with torch.no_grad():
        proba = predict_proba(model, inputs, forward, batch).numpy()
    if case != "whole":
        decided, proba = windows.aggregate(proba, recording, "mean")
        assert len(decided) == len(x)
    seconds = time.perf_counter() - started
    print(json.dumps({"inputs": len(inputs), "recordings": len(x), "seconds": seconds, "before_mb": before,
                      "peak_mb": peak_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bonn", type=Path, default=BONN, help="folder with the sets {Z,O,N,F,S}/*.txt")
    parser.add_argument("--hops", type=int, nargs="+", default=[512, 256, 64], help="window hops in samples")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--child", nargs=2, metavar=("CASE", "HOP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), str(args.bonn), args.batch)
        return
    cases = [("whole", 0), *(("windows", hop) for hop in args.hops), ("materialised", min(args.hops))]
    print(f"Bonn ({args.bonn}), cnn1d of config/bonn.yaml (random weights), eval mode, 1 thread, batches of "
          f"{args.batch}; windows of {LENGTH} samples; load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'case':<20} {'inputs':>7} {'seconds':>8} {'inputs/s':>9} {'segments/s':>11} {'peak RSS MB':>12} "
          f"{'loop added MB':>14}")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for case, hop in cases:
        done = subprocess.run([sys.executable, __file__, "--bonn", str(args.bonn), "--batch", str(args.batch),
                               "--child", case, str(hop)], capture_output=True, text=True, env=env, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        name = case if case == "whole" else f"{case} hop {hop}"
        print(f"{name:<20} {r['inputs']:>7} {r['seconds']:>8.2f} {r['inputs'] / r['seconds']:>9.0f} "
              f"{r['recordings'] / r['seconds']:>11.0f} {r['peak_mb']:>12.0f} {r['peak_mb'] - r['before_mb']:>14.1f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
