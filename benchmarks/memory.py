"""Memory and time at scale: ingest + log-Mel of ESC-10 once (400 clips) and ten times over (4,000 clips).

The 10x sample sheet lists every ESC-10 file ten times under distinct ids (no copies of the audio).
Each stage runs in a child process (``ingest``, then ``feature_store``: log-Mel, n_fft 2048, hop 512,
128 mels, on 5-s clips at 44.1 kHz), so that its peak resident memory (``ru_maxrss`` of that
child, from ``os.wait4``) is its own. Printed: work time of each stage (in the child, imports
excluded) and peak RSS, for 1x and 10x, and the ratios (goals: time <= 11x, peak RSS <= 1.2x), and
the share of the CPUs that other processes used meanwhile (a shared machine slows the times; each
child waits up to a minute for the CPUs to be free before it starts).

Then training-style reads: random batches of 32 samples (``Store.read`` of 32 random ids) from the
10x log-Mel store, stored plain, gzip and lzf (the compressed copies are written block by block
from the plain one), in samples/s, with the file sizes. The page cache is warm (the stores were
just written), as in a training run after its first epoch.

    .venv/bin/python benchmarks/memory.py [--esc10 DIR] [--copies 10] [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SPEC = {"column": "path", "kind": "auto", "sample_rate": None, "resample": None, "length_s": 5.0,
        "image_size": None, "image_mode": None, "filter": None}
LOGMEL = {"kind": "logmel", "n_fft": 2048, "hop_length": 512, "n_mels": 128}
BATCH = 32


def child(stage: str, source: str, out: str, compression: str | None) -> None:
    """Run one stage in this (child) process; print its work time (imports excluded) as JSON."""
    from deepself.io.store import create_store, open_store

    if stage == "ingest":
        from deepself.io.ingest import ingest
    elif stage == "features":
        import librosa.filters  # noqa: F401 (librosa loads its modules on first use)

        from deepself.signal import fast  # noqa: F401 (torch)
        from deepself.signal.stages import feature_store
    start = time.perf_counter()
    if stage == "ingest":
        ingest(source, "audio", SPEC, out)
    elif stage == "features":
        feature_store(source, out, "logmel", LOGMEL, cache=False)
    else:  # a compressed copy of a store, block by block
        with open_store(source) as store:
            with create_store(out, len(store.ids), store.x.shape[1:], store.meta, compression) as writer:
                for ids, x in store.blocks(64):
                    writer.write(ids, x)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def _cpu_ticks() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [float(v) / os.sysconf("SC_CLK_TCK") for v in stat.readline().split()[1:9]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def wait_for_quiet(limit: float = 60.0, threshold: float = 0.1) -> None:
    """Wait (up to ``limit`` s) until other processes use less than ``threshold`` of the CPUs for 1 s."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        busy, total = _cpu_ticks()
        time.sleep(1.0)
        now_busy, now_total = _cpu_ticks()
        if (now_busy - busy) / max(now_total - total, 1e-9) < threshold:
            return


def run_child(*args: str) -> tuple[float, float, float]:
    """Work seconds, peak RSS (MiB) of ``memory.py --child ARGS`` in a fresh process, and the share
    of the CPUs that other processes used meanwhile."""
    wait_for_quiet()
    busy, total = _cpu_ticks()
    process = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child {args} failed")
    busy, total = (now - before for now, before in zip(_cpu_ticks(), (busy, total)))
    others = max(0.0, busy - usage.ru_utime - usage.ru_stime) / max(total, 1e-9)
    return json.loads(output.strip().splitlines()[-1])["seconds"], usage.ru_maxrss / 1024, others


def write_sheet(clips: list[Path], copies: int, path: Path) -> Path:
    rows = [{"id": f"r{k}-{clip.stem}", "label": clip.parent.name, "fold": clip.name[0], "path": str(clip)}
            for k in range(copies) for clip in clips]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def random_reads(path: Path, seconds: float = 5.0) -> float:
    """Samples/s of training-style reads: batches of 32 random ids, for about ``seconds``."""
    from deepself.io.store import open_store

    rng = np.random.default_rng(0)
    with open_store(path) as store:
        ids = np.array(store.ids)
        store.read(list(rng.choice(ids, BATCH, replace=False)))
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            store.read(list(rng.choice(ids, BATCH, replace=False)))
            n += BATCH
        return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--esc10", type=Path, default=DATA / "esc10")
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--work", type=Path, default=None, help="folder for the temporary stores (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--child", nargs=4, metavar=("STAGE", "SOURCE", "OUT", "COMPRESSION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stage, source, out, compression = args.child
        child(stage, source, out, None if compression == "none" else compression)
        return

    clips = sorted(args.esc10.glob("*/*.ogg"))
    if not clips:
        print(f"ESC-10 skipped: no clips under {args.esc10}")
        return
    work = Path(tempfile.mkdtemp(prefix="deepself-memory-", dir=args.work))
    started = time.perf_counter()
    try:
        results = {}
        for copies in (1, args.copies):
            sheet = write_sheet(clips, copies, work / f"samples{copies}.csv")
            raw, mel = work / f"raw{copies}.h5", work / f"logmel{copies}.h5"
            results[copies] = {"ingest": run_child("ingest", str(sheet), str(raw), "none"),
                               "features": run_child("features", str(raw), str(mel), "none")}
            print(f"{copies}x: {len(clips) * copies} clips, ingest {results[copies]['ingest'][0]:.1f} s, "
                  f"features {results[copies]['features'][0]:.1f} s", flush=True)
        one, many = results[1], results[args.copies]
        n = f"{args.copies}x"
        print(f"\n{'stage':<10} {'time 1x':>9} {n:>9} {'ratio':>7}   {'peak RSS 1x':>12} {n:>9} {'ratio':>7}"
              f"   {'others 1x':>9} {n:>5}")
        for stage in ("ingest", "features", "both"):
            if stage == "both":
                (t1, m1, o1), (tn, mn, on) = ((sum(r[s][0] for s in r), max(r[s][1] for s in r),
                                               max(r[s][2] for s in r)) for r in (one, many))
            else:
                (t1, m1, o1), (tn, mn, on) = one[stage], many[stage]
            print(f"{stage:<10} {t1:>8.1f}s {tn:>8.1f}s {tn / t1:>6.2f}x   {m1:>8.0f} MiB {mn:>5.0f} MiB"
                  f" {mn / m1:>6.2f}x   {100 * o1:>8.0f}% {100 * on:>4.0f}%")

        plain = work / f"logmel{args.copies}.h5"
        print(f"\nrandom batches of {BATCH} from the {args.copies}x log-Mel store "
              f"({len(clips) * args.copies} samples of 1 x 128 x 431 float32, warm page cache):")
        for compression in ("none", "gzip", "lzf"):
            path, written = plain, 0.0
            if compression != "none":
                path = work / f"logmel{args.copies}-{compression}.h5"
                written = run_child("copy", str(plain), str(path), compression)[0]
            line = f"  {compression:<5} {random_reads(path):>7.0f} samples/s   {path.stat().st_size / 2**20:>6.0f} MiB"
            print(line + (f"   (written in {written:.1f} s)" if written else ""), flush=True)
        print(f"\ntotal {time.perf_counter() - started:.0f} s")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
