"""MultiRocket's two transforms side by side: aeon's compiled one (deepself's CPU path) and the torch one.

Both compute the same 49,728 features from the same fitted buffers (tests/models/test_multirocket.py);
this prints how long each takes on Bonn-sized signals (4,097 samples, one channel), alternating
the two ``--repeats`` times in one process, and their ratio. The torch code is what runs on a GPU
and what export traces; on the CPU deepself calls aeon's.

Run: ``.venv/bin/python benchmarks/multirocket_transform.py [--n 32] [--threads 1]``
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="signals per call")
    parser.add_argument("--n-times", type=int, default=4097)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from deepself.models import create_model

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, 1, args.n_times)).astype(np.float32)
    model = create_model("multirocket", n_chans=1, n_freqs=None, n_times=args.n_times, n_outputs=5).eval()
    model.fit_features(x, seed=0)
    signals = torch.from_numpy(x)
    with torch.no_grad():
        model.forward_features(signals[:2])  # aeon's compiled code loads from its cache once
        times = {"aeon (CPU path)": [], "torch": []}
        for _ in range(args.repeats):
            for name, run in (("aeon (CPU path)", model.forward_features), ("torch", model.torch_features)):
                started = time.perf_counter()
                run(signals)
                times[name].append(time.perf_counter() - started)
    print(f"{args.n} signals x {args.n_times} samples, {model.n_features} features, {args.threads} thread(s), "
          f"best of {args.repeats}")
    for name, seconds in times.items():
        print(f"  {name:16s} {min(seconds):7.2f} s   {args.n / min(seconds):7.1f} signals/s")
    print(f"  torch / aeon     {min(times['torch']) / min(times['aeon (CPU path)']):7.2f}x the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
