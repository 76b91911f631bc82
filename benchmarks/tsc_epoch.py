"""Seconds per training epoch of the time-series networks (``inception``, ``lite``; issue 26).

One epoch is forward, cross-entropy, backward and an Adam step (lr 1e-3) over every batch of
OSULeaf's training shape by default: 200 recordings x 1 channel x 427 samples, 6 classes, batch 64
(4 batches, the last of 8). The data are random, in memory; nothing else runs (no data loading,
no development evaluation: deepself's ``train_fold`` adds those). Each arch trains one untimed
warm-up epoch, then ``--epochs`` timed ones; the figure is their median. Each line also says how
much of all the CPUs other processes used meanwhile (from /proc/stat), as this machine is shared.
The issue's goal: ``lite`` at most 1 s per epoch on the 2-core development CPU.

    .venv/bin/python benchmarks/tsc_epoch.py --threads 2
    .venv/bin/python benchmarks/tsc_epoch.py --threads 1 --archs lite --profile   # where the time goes
    .venv/bin/python benchmarks/tsc_epoch.py --threads 1 --sets all --epochs 2     # each set's training shape

``--sets`` times the training shapes of the five sets of ``benchmarks/tsc_parity.py`` (their official
training parts) and of Bonn (a fold's training part, less its development split: 320 recordings of
4,097 samples); the shape, not the values, decides the time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

from deepself.models import create_model


# recordings, channels, samples, classes of each set's training part (as aeon ships them; Bonn: 500
# recordings, 5-fold cross-validation, cv.dev_fraction 0.2)
SHAPES = {"ArrowHead": (36, 1, 251, 3), "OSULeaf": (200, 1, 427, 6), "ItalyPowerDemand": (67, 1, 24, 2),
          "PickupGestureWiimoteZ": (50, 1, 361, 10), "BasicMotions": (40, 6, 100, 4), "Bonn": (320, 1, 4097, 5)}


def cpu_ticks() -> tuple[float, float]:
    """(busy, total) seconds of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [float(v) / os.sysconf("SC_CLK_TCK") for v in stat.readline().split()[1:9]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def others_share(start: tuple[float, float], own_start: float) -> float:
    """Share of all CPUs that other processes used since ``start`` (this process's CPU time subtracted)."""
    busy, total = cpu_ticks()
    own = sum(os.times()[:2]) - own_start
    return max(0.0, (busy - start[0] - own) / max(total - start[1], 1e-9))


def epoch(model: nn.Module, optimiser, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    """One training epoch over ``x`` in batches of ``batch``; its wall seconds."""
    model.train()
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        optimiser.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x[i : i + batch]), y[i : i + batch])
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


def bench(arch: str, x: torch.Tensor, y: torch.Tensor, args) -> dict:
    """Build ``arch``, train a warm-up epoch and ``args.epochs`` timed ones."""
    torch.manual_seed(0)
    model = create_model(arch, n_chans=x.shape[1], n_freqs=None, n_times=x.shape[2], n_outputs=args.classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    epoch(model, optimiser, x, y, args.batch)
    start, own = cpu_ticks(), sum(os.times()[:2])
    times = [epoch(model, optimiser, x, y, args.batch) for _ in range(args.epochs)]
    return {"arch": arch, "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "times": times, "median": statistics.median(times), "others": others_share(start, own),
            "model": model, "optimiser": optimiser}


def profile(result: dict, x: torch.Tensor, y: torch.Tensor, args) -> None:
    """Print the operators that took the most time over one more epoch."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        epoch(result["model"], result["optimiser"], x, y, args.batch)
    print(f"\n{result['arch']}: one epoch under the profiler")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", nargs="+", default=["inception", "lite"])
    parser.add_argument("--n", type=int, default=200, help="recordings (OSULeaf's training part: 200)")
    parser.add_argument("--chans", type=int, default=1)
    parser.add_argument("--length", type=int, default=427, help="samples per recording (OSULeaf: 427)")
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--profile", action="store_true", help="profile one more epoch of each arch")
    parser.add_argument("--rows", type=int, default=15, help="operators listed by --profile")
    parser.add_argument("--sets", nargs="+", choices=[*SHAPES, "all"],
                        help="time each set's training shape instead of --n/--chans/--length/--classes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.sets:
        for name in SHAPES if "all" in args.sets else args.sets:
            args.n, args.chans, args.length, args.classes = SHAPES[name]
            print(f"\n{name}:")
            run(args)
        return
    run(args)


def run(args) -> None:
    """Time every arch of ``args`` on random data of ``args``' shape and print a line each."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.chans, args.length, generator=g)
    y = torch.arange(args.n) % args.classes
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s), input {tuple(x.shape)}, "
          f"batch {args.batch}, Adam 1e-3, {args.epochs} timed epochs after 1 warm-up; "
          f"load average {os.getloadavg()[0]:.2f} before")
    results = []
    for arch in args.archs:
        r = bench(arch, x, y, args)
        results.append(r)
        print(f"{arch:10s} {r['params']:9,d} parameters  {r['median']:7.3f} s/epoch (median; "
              f"{', '.join(f'{t:.3f}' for t in r['times'])})  others used {r['others']:.0%} of the CPUs")
    if len(results) > 1:
        base = results[0]
        for r in results[1:]:
            print(f"{r['arch']} / {base['arch']}: {r['params'] / base['params']:.1%} of the parameters, "
                  f"{r['median'] / base['median']:.1%} of the time per epoch")
    if args.profile:
        for r in results:
            profile(r, x, y, args)


if __name__ == "__main__":
    main()
