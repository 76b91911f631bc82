"""What checking a store's fingerprint costs where it is read, against reading it as a training job does.

Writes a store of the shape of ESC-10's log-Mel maps (400 clips x 1 x 128 bands x 431 frames,
float32, 88 MB) into a temporary folder, then times, in this process, median of ``--repeats``:

- ``open_store(path, verify=False)`` then ``read`` of every sample in sheet order (what
  ``deepself.training.data.TrainingData`` does);
- the same with ``verify=True`` (the default): one more sequential read and a SHA-256 of it.

The ratio is the cost of the check per store opened; a training job opens its store once, for all
the folds it trains.

    .venv/bin/python benchmarks/store_verify.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from deepself.io.store import create_store, open_store


def timed(path: Path, ids: list[str], verify: bool) -> float:
    start = time.perf_counter()
    with open_store(path, verify=verify) as store:
        store.read(ids)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--shape", type=int, nargs="+", default=[1, 128, 431])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "maps.h5"
        rng = np.random.default_rng(0)
        ids = [f"clip{i:04d}" for i in range(args.samples)]
        with create_store(path, args.samples, tuple(args.shape), {"kind": "feature"}) as writer:
            for start in range(0, args.samples, 50):
                block = ids[start:start + 50]
                writer.write(block, rng.standard_normal((len(block), *args.shape)).astype(np.float32))
        size = path.stat().st_size
        timed(path, ids, True)  # the page cache warm for both
        plain = statistics.median(timed(path, ids, False) for _ in range(args.repeats))
        checked = statistics.median(timed(path, ids, True) for _ in range(args.repeats))
    print(f"store of {args.samples} x {tuple(args.shape)} float32 ({size / 1e6:.0f} MB): open + read {plain:.3f} s, "
          f"with the fingerprint checked {checked:.3f} s (+{checked - plain:.3f} s, {size / 1e6 / (checked - plain):.0f} "
          f"MB/s of checking); median of {args.repeats}")


if __name__ == "__main__":
    main()
