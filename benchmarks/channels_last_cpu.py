"""Channels-last against contiguous memory format for a ResNet18 training step on the CPU, in turns.

The step of the ESC-10 benchmark (`esc10_dag.py --n-mels 64 --hop-length 2048`): torchvision's
ResNet18 with a one-channel first convolution, Adam, a batch of 32 maps of 1 x 64 x 108. The two
formats alternate (three rounds each, after two warm-up steps per round) so that a change in the
machine's load falls on both; printed: seconds per step of every round and the ratio of medians.

    .venv/bin/python benchmarks/channels_last_cpu.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision


def step_seconds(memory_format: torch.memory_format, steps: int) -> float:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters())
    x = torch.randn(32, 1, 64, 108).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (32,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    times = {"contiguous": [], "channels_last": []}
    for _ in range(args.rounds):
        times["contiguous"].append(step_seconds(torch.contiguous_format, args.steps))
        times["channels_last"].append(step_seconds(torch.channels_last, args.steps))
    print(f"torch {torch.__version__}, {args.threads} thread(s), ResNet18 step, batch 32 of 1 x 64 x 108")
    for name, values in times.items():
        print(f"{name:14s}: " + ", ".join(f"{v:.3f}" for v in values) + " s/step")
    ratio = statistics.median(times["contiguous"]) / statistics.median(times["channels_last"])
    print(f"contiguous / channels_last (medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
