"""Feature-map throughput: deepself's batched PyTorch maps vs librosa / pywt one clip at a time, in one run.

For each data set (ESC-10: 400 clips of 5 s at 44.1 kHz; Bonn EEG: 500 segments of 23.6 s at
173.61 Hz) and feature, it times

- the reference: a Python loop calling librosa / pywt on one clip at a time (the functions of
  ``deepself.signal.features.FEATURES``, which are librosa's and pywt's calls and nothing else);
- deepself: ``features.compute`` (its default backend: the batched PyTorch implementation of
  ``deepself.signal.fast``; parameters checked, input checked for NaN) on the blocks that
  ``feature_store`` passes (64 clips, fewer when their maps are large), on CUDA when there is a GPU,
  else on the CPU;

and prints clips per second, times real time (audio seconds per wall second) and the ratio. Each
figure is the best of ``--repeat`` runs after one warm-up call (the warm-up builds what a
parameter set needs once: window, Mel bands, wavelet filters). A data set whose folder is absent
is skipped with a message. A shared machine slows every figure: each run waits (up to
``--wait`` s) for other processes to leave the CPUs, and the share of the CPUs they used during
the runs kept is printed beside each row.

    .venv/bin/python benchmarks/features.py
    .venv/bin/python benchmarks/features.py --esc10 /path/to/esc10 --bonn /path/to/bonn --repeat 5
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import librosa
import numpy as np
import pywt
import torch

from deepself.io.readers import read_signal
from deepself.signal import fast, features
from deepself.signal.params import check_params, output_shape
from deepself.signal.stages import block_size

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BONN_RATE = 173.61


def load_esc10(root: Path) -> tuple[np.ndarray, float]:
    clips = sorted(root.glob("*/*.ogg"))
    if not clips:
        raise FileNotFoundError(root)
    signals = []
    for path in clips:
        x, sr = read_signal(path)
        signals.append(librosa.util.fix_length(x, size=round(5.0 * sr)))  # as ingest with length_s: 5
    return np.stack(signals), sr


def load_bonn(root: Path) -> tuple[np.ndarray, float]:
    segments = sorted(p for p in root.glob("*/*") if p.suffix.lower() == ".txt")
    if not segments:
        raise FileNotFoundError(root)
    return np.stack([read_signal(path)[0] for path in segments]), BONN_RATE


class CpuShare:
    """Share of all CPUs that other processes used since the last ``reset`` (from /proc/stat)."""

    def __init__(self):
        self.reset()

    @staticmethod
    def _busy() -> tuple[float, float]:
        with open("/proc/stat") as stat:
            fields = [float(v) for v in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields[:8]) - idle, sum(fields[:8])

    def reset(self) -> None:
        self._start, self._own = self._busy(), sum(os.times()[:2])

    def others(self) -> float:
        (busy0, total0), (busy1, total1) = self._start, self._busy()
        ticks = os.sysconf("SC_CLK_TCK")
        others = (busy1 - busy0) / ticks - (sum(os.times()[:2]) - self._own)
        return max(0.0, others / max((total1 - total0) / ticks, 1e-9))


def wait_for_quiet(limit: float, threshold: float = 0.1) -> None:
    """Wait (up to ``limit`` s) until other processes use less than ``threshold`` of the CPUs for 1 s."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        share = CpuShare()
        time.sleep(1.0)
        if share.others() < threshold:
            return


def best_of(repeat: int, function, wait: float) -> tuple[float, float]:
    """(seconds, share of the CPUs other processes used meanwhile) of the fastest of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        wait_for_quiet(wait)
        share = CpuShare()
        start = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        runs.append((time.perf_counter() - start, share.others()))
    return min(runs)


def run_case(label: str, kind: str, params: dict, x: np.ndarray, sr: float, reference_clips: int,
             repeat: int, wait: float, precision: str = "auto") -> dict:
    p = check_params(kind, params, sr, x.shape[-1], "benchmark")
    seconds = x.shape[-1] / sr
    reference = features.FEATURES[kind]
    subset = x[:reference_clips]

    shape = output_shape(kind, p, sr, x.shape[-1], x.shape[1])
    block = block_size(x.shape[1:], shape)

    maps = np.empty((block, *shape), dtype=np.float32)  # feature_store fills one block's maps again and again

    def deepself():
        for start in range(0, len(x), block):
            chunk = x[start : start + block]
            if precision == "auto":  # what feature_store calls
                features.compute(kind, chunk, sr, p, out=maps[: len(chunk)])
            else:
                fast.compute(kind, chunk, sr, p, precision=precision, out=maps[: len(chunk)])

    def loop():
        for clip in subset:
            reference(clip, sr, **p)

    fast.compute(kind, x[:2], sr, p, precision=precision)
    reference(x[0], sr, **p)
    ours, ours_busy = best_of(repeat, deepself, wait)
    theirs, theirs_busy = best_of(repeat, loop, wait)
    return {"label": label, "clips": len(x), "reference_clips": len(subset), "seconds": seconds,
            "ours": len(x) / ours, "theirs": len(subset) / theirs, "busy": max(ours_busy, theirs_busy)}


def print_row(row: dict) -> None:
    clips = f"{row['clips']}" + (f" ({row['reference_clips']})" if row["reference_clips"] != row["clips"] else "")
    print(f"{row['label']:<52} {clips:>10} {row['theirs']:>9.1f} {row['theirs'] * row['seconds']:>8.0f}x"
          f" {row['ours']:>9.1f} {row['ours'] * row['seconds']:>8.0f}x {row['ours'] / row['theirs']:>7.1f}x"
          f" {100 * row['busy']:>6.0f}%", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--esc10", type=Path, default=DATA / "esc10")
    parser.add_argument("--bonn", type=Path, default=DATA / "bonn")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    parser.add_argument("--wait", type=float, default=30.0,
                        help="before each run, wait up to this many seconds for other processes to leave the CPUs")
    args = parser.parse_args()

    device = fast.default_device()
    print(f"deepself {device.type} (torch {torch.__version__}, {torch.get_num_threads()} threads), "
          f"librosa {librosa.__version__}, pywt {pywt.__version__}, {os.cpu_count()} CPUs")
    if device.type != "cuda":
        print("no CUDA GPU here: the GPU goal (>= 100x) is not measured by this run")
    share = CpuShare()
    print(f"\n{'data set / feature / parameters':<52} {'clips':>10} {'librosa/pywt':>19} {'deepself':>19} {'ratio':>8}"
          f" {'others':>7}")
    print(f"{'':<52} {'':>10} {'clips/s':>9} {'realtime':>9} {'clips/s':>9} {'realtime':>9}")

    logmel = {"n_fft": 2048, "hop_length": 512, "n_mels": 128}
    cases = {
        "ESC-10": (load_esc10, args.esc10, [
            # label, kind, parameters, seconds of each clip (None: all), clips timed in the reference loop
            ("logmel n_fft 2048 hop 512 128 mels", "logmel", logmel, None, None, "auto"),
            ("logmel, same, float64 FFTs (as for top_db null)", "logmel", logmel, None, None, "float64"),
            ("spectrogram n_fft 2048 hop 512", "spectrogram", {"n_fft": 2048, "hop_length": 512}, None, None, "auto"),
            ("scalogram 1st s, 64 morl 20 Hz-11 kHz", "scalogram", {"n_scales": 64, "fmin": 20.0}, 1.0, 40, "auto"),
        ]),
        "Bonn": (load_bonn, args.bonn, [
            ("logmel n_fft 256 hop 64 32 mels", "logmel", {"n_fft": 256, "hop_length": 64, "n_mels": 32}, None,
             None, "auto"),
            ("spectrogram n_fft 256 hop 64", "spectrogram", {"n_fft": 256, "hop_length": 64}, None, None, "auto"),
            ("scalogram 64 morl 0.17-43 Hz (default range)", "scalogram", {"n_scales": 64}, None, 100, "auto"),
        ]),
    }
    for name, (load, folder, rows) in cases.items():
        try:
            x, sr = load(folder)
        except FileNotFoundError:
            print(f"{name} skipped: no files under {folder}")
            continue
        for label, kind, params, seconds, reference_clips, precision in rows:
            clips = x if seconds is None else x[..., : round(seconds * sr)]
            print_row(run_case(f"{name} {label}", kind, params, clips, sr, reference_clips or len(x), args.repeat,
                               args.wait, precision))
    print(f"\nclips (n): the reference loop timed on the first n clips only. others: the share of the CPUs "
          f"that other processes used during the best runs of the row (during the whole run: "
          f"{100 * share.others():.0f}%).")


if __name__ == "__main__":
    main()
