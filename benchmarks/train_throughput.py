"""Training throughput: deepself's fold training vs a minimal hand-written PyTorch loop, in one run.

Both train the same model on the same synthetic maps with the same batch size and precision; the
hand-written loop is what a user would write in a notebook (data already in memory / on the GPU,
no dev evaluation). deepself's figure is its real per-epoch cost, the per-epoch development
evaluation included, read from the history it writes. The ratio deepself / hand is the figure
of merit (goal >= 0.95). On CUDA the plain fp32 loop is printed for reference.

The two sides run in turn, in the order deepself, hand, hand, deepself (``--rounds`` pairs,
alternating which goes first), and each side's figure is the median of its runs. Timed one after
the other, once each, the side that ran first was the faster one on this shared machine whichever
side it was (the load of other jobs changes over a minute): deepself first printed a ratio of
1.1-1.5, the hand loop first 0.79. Each run prints the share of the CPUs that other processes used
meanwhile, so a reader sees how busy the machine was.

    python benchmarks/train_throughput.py                      # CPU-sized default
    python benchmarks/train_throughput.py --arch torchvision --args '{"name": "resnet18"}' \
        --shape 3 128 431 --batch 64 --n 2048                  # the GPU figure of issue 5
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepself.config import validate_config
from deepself.io.store import create_store
from deepself.models import create_model
from deepself.training.fold import train_fold


def make_task(folder: Path, n: int, shape: tuple[int, ...], n_classes: int) -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % n_classes
    with create_store(folder / "maps.h5", n, shape, {"kind": "signal", "layout": "CFT"}) as writer:
        for start in range(0, n, 256):
            block = rng.normal(size=(min(256, n - start), *shape)).astype(np.float32)
            writer.write([f"s{i:05d}" for i in range(start, start + len(block))], block)
    pd.DataFrame({"id": [f"s{i:05d}" for i in range(n)], "label": labels.astype(str),
                  "fold": np.where(np.arange(n) // n_classes % 10 == 0, "2", "1")}).to_csv(folder / "samples.csv", index=False)


class CpuShare:
    """Share of all CPUs that other processes used since this object was made (from /proc/stat)."""

    def __init__(self):
        self._start, self._own = self._ticks(), sum(os.times()[:2])

    @staticmethod
    def _ticks() -> tuple[float, float]:
        with open("/proc/stat") as stat:
            fields = [float(v) / os.sysconf("SC_CLK_TCK") for v in stat.readline().split()[1:9]]
        return sum(fields) - fields[3] - fields[4], sum(fields)

    def others(self) -> float:
        (busy0, total0), (busy1, total1) = self._start, self._ticks()
        others = (busy1 - busy0) - (sum(os.times()[:2]) - self._own)
        return max(0.0, others / max(total1 - total0, 1e-9))


def hand_loop(arch, args, shape, n_fit, n_classes, batch, epochs, device, bf16, channels_last) -> float:
    """samples/s of the obvious loop: tensors in memory (on the GPU when there is one), Adam, cross-entropy."""
    torch.manual_seed(0)
    model = create_model(arch, n_chans=shape[0], n_freqs=shape[1], n_times=shape[2], n_outputs=n_classes, **args)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=fmt).train()
    x = torch.randn(n_fit, *shape, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, n_classes, (n_fit,), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(epochs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, n_fit - 1, batch):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(model(x[i : i + batch]).float(), y[i : i + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return n_fit / float(np.median(times[1:] if len(times) > 1 else times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="cnn2d")
    parser.add_argument("--args", default='{"channels": [32, 64, 128], "pool": 2}')
    parser.add_argument("--shape", type=int, nargs=3, default=[1, 64, 128], help="channels, freq, time")
    parser.add_argument("--n", type=int, default=1100, help="samples (10%% are held out, 5%% of the rest dev)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2,
                        help="pairs of runs, alternating which side goes first (default 2: deepself, hand, hand, deepself)")
    opts = parser.parse_args()
    args, shape = json.loads(opts.args), tuple(opts.shape)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else f'{torch.get_num_threads()} CPU threads'}), "
          f"torch {torch.__version__}, {opts.arch} {args}, input {shape}, batch {opts.batch}, "
          f"precision {'bf16 + channels_last' if bf16 else 'fp32'}")

    config = validate_config({"experiment": "bench", "data": {"adapter": "digits"},
                              "features": {"f": {"kind": "raw"}},
                              "models": {"m": {"arch": opts.arch, "feature": "f", "args": args}},
                              "train": {"epochs": opts.epochs, "batch_size": opts.batch, "normalize": "none"}})
    model = config["models"]["m"]
    spec = {"name": "m", **model, "classes": None, "dev_fraction": 0.05, "cv_seed": 0}
    runs, job = {"deepself": [], "hand": []}, {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_task(folder, opts.n, shape, opts.classes)

        def run_deepself(k: int) -> float:
            out = folder / f"out{k}"
            t0 = time.perf_counter()
            result = train_fold(folder / "samples.csv", folder / "maps.h5", "2", spec, out)
            job.update(result, wall=time.perf_counter() - t0)
            per_epoch = pd.read_csv(out / "history.csv")["samples_per_s"]
            return float(np.median(per_epoch[1:] if len(per_epoch) > 1 else per_epoch))

        def run_hand() -> float:
            return hand_loop(opts.arch, model["args"], shape, job["n_train"], opts.classes, opts.batch,
                             opts.epochs, device, bf16, bf16 and len(shape) == 3)

        print(f"\n{'run':>3} {'side':<9} {'samples/s':>10} {'others':>7}")
        for k in range(opts.rounds):
            for side in ("deepself", "hand") if k % 2 == 0 else ("hand", "deepself"):
                share = CpuShare()
                runs[side].append(run_deepself(k) if side == "deepself" else run_hand())
                print(f"{k + 1:>3} {side:<9} {runs[side][-1]:>10.1f} {100 * share.others():>6.0f}%", flush=True)
    ours, hand = float(np.median(runs["deepself"])), float(np.median(runs["hand"]))
    print(f"\ndeepself train_fold : {ours:10.1f} samples/s  (median of {len(runs['deepself'])} runs of the median "
          f"epoch, dev evaluation included; {job['n_train']} fit + {job['n_dev']} dev samples; last whole job {job['wall']:.1f} s)")
    print(f"hand-written loop   : {hand:10.1f} samples/s  (median of {len(runs['hand'])} runs)")
    print(f"ratio deepself/hand : {ours / hand:10.3f}")
    if device.type == "cuda":
        plain = hand_loop(opts.arch, model["args"], shape, job["n_train"], opts.classes, opts.batch,
                          opts.epochs, device, False, False)
        print(f"plain fp32 loop     : {plain:10.1f} samples/s (reference)")


if __name__ == "__main__":
    main()
