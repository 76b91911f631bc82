"""Probe parity (issue 14): deepself's ``train_mode: probe`` against a plain scikit-learn logistic regression
on the same frozen embeddings, per pretrained network, on ESC-10's official folds.

For each probed model of the config (by default ``panns``, the aisfx ConvBlocks, and ``yamnet``)
the script builds the sample sheet, ingests the clips and computes the model's feature with
deepself's own stages (cached under ``--work``), then per held-out fold:

- deepself: :func:`deepself.training.fold.train_fold_on` with the config's model spec, exactly as a
  workflow job runs it (embeddings, C chosen on the development split, refit, prediction);
- baseline: the same model's embeddings (:func:`deepself.training.probe.embed`), scikit-learn
  ``StandardScaler`` + ``LogisticRegression(C=1)`` (scikit-learn's default C, as in
  ``../shared/DATA.md``) fitted on all of the training folds, scored on the held-out fold.

It prints each side's UAR per fold and mean ± sd (ddof 1). Nothing is chosen on a held-out fold.

Run: ``.venv/bin/python benchmarks/probe_parity.py`` (data: ``--root``, default
``../shared/data/esc10``; the weights files are made in ``--work`` from the aisfx wheel and the
YAMNet TFLite file, ``--yamnet-tflite``).
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _weights(model: str, args, work: Path) -> str | None:
    """The weights file of ``model``, made in ``work`` once; None (with the reason printed) when it cannot be."""
    from deepself.models import weights
    from deepself.errors import DeepselfError

    out = work / "weights" / f"{model}.pth"
    if out.is_file():
        return str(out)
    try:
        if model == "panns":
            weights.panns_aisfx(out)
        elif model == "yamnet":
            weights.yamnet(out, args.yamnet_tflite)
        else:
            print(f"{model}: no weights importer in this benchmark, skipped")
            return None
    except DeepselfError as err:
        print(f"{model}: skipped, its weights cannot be made here ({err})")
        return None
    return str(out)


def _store(config: dict, feature: str, sheet: Path, work: Path) -> Path:
    """The feature store of ``feature`` through deepself's ingest and feature stages (cached)."""
    from deepself.io.ingest import ingest
    from deepself.signal.stages import feature_store

    spec = config["features"][feature]
    modality = spec.get("modality") or next(iter(config["data"]["modalities"]))
    raw = work / "raw" / f"{modality}.h5"
    if not raw.is_file():
        ingest(sheet, modality, config["data"]["modalities"][modality], raw)
    out = work / "features" / f"{feature}.h5"
    feature_store(raw, out, feature, spec)
    return out


def _baseline(data, split, spec: dict) -> float:
    """UAR of StandardScaler + LogisticRegression(C=1) on all training folds' embeddings of the spec's model."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from deepself.inference import Forward
    from deepself.models import create_model
    from deepself.scoring.metrics import uar
    from deepself.training import probe

    torch.manual_seed(spec["train"]["seed"])
    shape = tuple(data.x.shape[1:])
    model = create_model(spec["arch"], n_chans=shape[0], n_freqs=shape[1], n_times=shape[2],
                         n_outputs=len(data.classes), **spec["args"])
    forward = Forward.for_training(spec["train"], split.stats, len(shape))
    forward.prepare(model)
    _, embeddings = probe.embed(model, data.x, forward, 64)
    x, y = embeddings.cpu().double().numpy(), data.y.cpu().numpy()
    train = np.concatenate([split.fit, split.dev])
    regression = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)).fit(x[train], y[train])
    return uar(y[split.test], regression.predict(x[split.test]), len(data.classes))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config" / "esc10.yaml"))
    parser.add_argument("--root", default=str(SHARED / "data" / "esc10"), help="the ESC-10 clips")
    parser.add_argument("--yamnet-tflite", default=str(SHARED / "models" / "yamnet" / "yamnet.tflite"))
    parser.add_argument("--work", default="/tmp/deepself_probe_parity", help="stores and weights (cached)")
    parser.add_argument("--models", nargs="+", default=["panns", "yamnet"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not Path(args.root).is_dir():
        print(f"skipped: ESC-10 is not at {args.root} (deepself data download esc10 --root DIR, then --root DIR)")
        return 0

    from deepself.config import load_config
    from deepself.io.sheet import build_sheet, write_sheet
    from deepself.training.data import TrainingData
    from deepself.training.fold import train_fold_on

    torch.set_num_threads(1)
    work = Path(args.work)
    config = load_config(args.config)
    config["data"]["root"] = args.root
    sheet = work / "samples.csv"
    if not sheet.is_file():
        write_sheet(build_sheet(config["data"], config["cv"], work), sheet)
    print(f"device cpu, {torch.get_num_threads()} thread, torch {torch.__version__}; ESC-10 at {args.root}")
    for name in args.models:
        spec = copy.deepcopy(config["models"][name])
        weights = _weights(name, args, work)
        if weights is None:
            continue
        spec["args"]["weights"] = weights
        spec["train"] = {k: v for k, v in spec["train"].items()
                         if k not in ("folds_per_job", "threads", "gpu", "resume_every_s")}
        spec.update(name=name, classes=config["data"]["classes"], dev_fraction=config["cv"]["dev_fraction"],
                    cv_seed=config["cv"]["seed"])
        started = time.perf_counter()
        data = TrainingData(sheet, _store(config, spec["feature"], sheet, work), spec["classes"])
        folds = sorted(set(data.folds))
        rows = []
        for fold in folds:
            result = train_fold_on(data, fold, spec, work / "runs" / name / f"fold{fold}")
            rows.append((fold, 100 * result["test_uar"], 100 * _baseline(data, data.split(fold, spec), spec)))
        ours, plain = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
        print(f"\n{name} ({spec['arch']} {spec['args']}, feature {spec['feature']}), "
              f"{time.perf_counter() - started:.0f} s")
        print("fold  deepself probe  sklearn LR (C=1)")
        for fold, a, b in rows:
            print(f"{fold:>4}  {a:14.1f}  {b:16.1f}")
        print(f"mean  {ours.mean():7.1f} ± {ours.std(ddof=1):4.1f}  {plain.mean():9.1f} ± {plain.std(ddof=1):4.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
