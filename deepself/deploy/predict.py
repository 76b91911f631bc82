"""Apply trained models to new files: ``deepself predict MODEL_OR_EXPERIMENT FILES...``.

A checkpoint carries the meta of the store its model learned from, and with it every step that
made that store: how the files were read (the modality's ingest settings, ``store_meta["ingest"]``:
sample rate, resampling, crop or pad, image size and mode), the band-pass (``filter``), the
feature map (``feature_kind``, ``feature_params``), and the normalisation statistics of the
fold's training part. :func:`~deepself.deploy.replay.model_input` replays those steps on one new file with the very
functions the stages use (the readers, ingest's resampling and crop/pad, ``bandpass``,
``features.compute``), so that a file of the training set gets exactly the input it had there.
:mod:`deepself.deploy.experiment` reads an experiment folder's models, folds and fusion weights.

The command line imports this module to register ``predict``; numpy, pandas, torch and the stages
are imported by the functions that use them, so that no other subcommand waits for them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from deepself.deploy.experiment import expected_folds, fold_checkpoints, fold_weights, members, read_experiment_config
from deepself.deploy.replay import ingest_spec, model_input
from deepself.errors import DeepselfError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)



class _Inputs:
    """Model inputs of the samples, computed once per store recipe (every fold of a model shares one)."""

    def __init__(self, samples: pd.DataFrame, key: str, origin: str):
        self.samples, self.key, self.origin = samples, key, origin
        self._cache: dict[str, np.ndarray] = {}

    def paths(self, meta: dict) -> list[str]:
        if self.key == "path":
            return list(self.samples["path"])
        column = ingest_spec(meta)["column"]
        if column not in self.samples.columns:
            raise DeepselfError(f"{self.origin}: no column {column!r}, which holds the files of modality "
                                f"{meta.get('modality')!r} (columns: {', '.join(self.samples.columns)})")
        return list(self.samples[column])

    def of(self, checkpoint: dict) -> np.ndarray:
        import numpy as np

        from deepself.inference import input_shape

        recipe = json.dumps([checkpoint["store_meta"], input_shape(checkpoint)], sort_keys=True, default=str)
        if recipe not in self._cache:
            arrays = [model_input(p, checkpoint) for p in self.paths(checkpoint["store_meta"])]
            # windowed models take recordings of their own lengths, one at a time
            self._cache[recipe] = arrays if checkpoint.get("windows") else np.stack(arrays)
        return self._cache[recipe]


def _checkpoint_proba(path: Path, inputs: _Inputs, batch_size: int, classes: list[str] | None):
    import numpy as np
    import torch

    from deepself.inference import build_model, checkpoint_forward, load_checkpoint, predict_proba

    checkpoint = load_checkpoint(path)
    if classes is not None and list(checkpoint["classes"]) != list(classes):
        raise DeepselfError(f"{path}: classes {', '.join(checkpoint['classes'])} differ from "
                            f"{', '.join(classes)} of the other models")
    model = build_model(checkpoint, path)
    plan = checkpoint.get("windows")
    if plan:
        from deepself.training import windows

        rows = []
        for recording in inputs.of(checkpoint):  # each of its own length; its windows cut batch by batch
            x = torch.from_numpy(recording)[None]
            first = windows.starts(x.shape[-1], plan["length"], plan["eval_hop"])
            view = windows.Windows(x, np.zeros(len(first), dtype=np.int64), first, plan["length"])
            window_proba = predict_proba(model, view, checkpoint_forward(checkpoint), batch_size).numpy()
            rows.append(windows.aggregate(window_proba, view.recording, plan["aggregate"])[1][0])
        return np.stack(rows), checkpoint
    x = torch.from_numpy(inputs.of(checkpoint))
    proba = predict_proba(model, x, checkpoint_forward(checkpoint), batch_size).numpy().astype(np.float64)
    return proba, checkpoint


def predict(source: str | os.PathLike, samples: pd.DataFrame, *, model: str | None = None,
            fusion: str | None = None, batch_size: int = 64, origin: str = "") -> pd.DataFrame:
    """Class probabilities of new samples from one checkpoint, one model of an experiment, or a fusion.

    Parameters
    ----------
    source
        A ``checkpoint.pt`` (one fold's model), or a ``results/<experiment>`` folder. For an
        experiment, every fold's checkpoint of the model is applied and their probabilities are
        averaged (equal weights: the folds' models are equally good estimates of one model).
        With ``fusion``, the fusion's models (read from ``<experiment>/config.json``) are fused in
        each fold with the weights the fuse stage chose for that fold (its
        ``fusions/<fusion>/fold<k>/weights.json``; without that file, chosen again as the fuse
        stage does for ``mean``, ``weighted`` and ``top``, from the development UARs the
        checkpoints record), then the folds are averaged.
    samples
        One row per sample: a ``path`` column (files of the model's one modality), or an ``id``
        column and one column of files per modality, named as the modality's ``column`` in the
        config (several modalities, for a fusion over them).
    model
        For an experiment of several models: the model to apply.
    fusion
        For an experiment: a fusion of its config to apply.
    batch_size
        Samples per forward pass.
    origin
        Where ``samples`` came from (a sample sheet), named in errors.

    Returns
    -------
    pandas.DataFrame
        The columns of ``predictions.csv`` that new samples have: ``id`` (the sheet's id, or the
        file as given), ``label`` when the sheet gives one, ``pred``, then ``p_<class>`` for every class.
    """
    from deepself.scoring.predictions import predictions_frame

    source = Path(source)
    key = "path" if "path" in samples.columns and "id" not in samples.columns else "id"
    inputs = _Inputs(samples, key, origin or "the sample sheet")
    if source.is_dir():
        proba, classes = _experiment_proba(source, inputs, key, model, fusion, batch_size)
    elif source.exists():
        if model or fusion:
            raise DeepselfError(f"{source}: --model and --fusion choose within an experiment folder, "
                                "not a checkpoint")
        proba, checkpoint = _checkpoint_proba(source, inputs, batch_size, None)
        classes = list(checkpoint["classes"])
    else:
        raise DeepselfError(f"{source}: no such checkpoint file or experiment folder")
    return predictions_frame(samples[key].to_numpy(), classes, proba,
                             lambda i, n: f"{samples[key].iloc[i]}: the model gives non-finite probabilities; "
                                          "check the file for huge or non-finite values",
                             labels=samples["label"].to_numpy() if "label" in samples.columns else None)


def _experiment_proba(source: Path, inputs: _Inputs, key: str, model: str | None, fusion: str | None,
                      batch_size: int) -> tuple[np.ndarray, list[str]]:
    """The probabilities of an experiment's model or fusion (fused in each fold, averaged over folds), and the
    classes."""
    import numpy as np

    from deepself.scoring.fusion import late_fusion

    config = read_experiment_config(source)
    names, spec = members(source, config, model, fusion)
    expected = expected_folds(source, config)
    checkpoints = {name: fold_checkpoints(source, name, expected) for name in names}
    folds = list(checkpoints[names[0]])
    for name in names[1:]:
        if list(checkpoints[name]) != folds:
            raise DeepselfError(f"{source / 'models' / name}: folds {', '.join(checkpoints[name])} differ from "
                                f"folds {', '.join(folds)} of {names[0]}; fused models must share folds")
    _one_modality(checkpoints, key)
    classes, per_fold = None, []
    for fold in folds:
        probabilities, dev_uars = [], []
        for name in names:
            proba, checkpoint = _checkpoint_proba(checkpoints[name][fold], inputs, batch_size, classes)
            classes = list(checkpoint["classes"])
            probabilities.append(proba)
            dev_uars.append(float(checkpoint.get("dev_uar", 0.0)))
        weights = fold_weights(source, fusion, spec, fold, names, dev_uars)
        per_fold.append(late_fusion(probabilities, weights))
    proba = np.mean(per_fold, axis=0)
    return proba, classes


def _one_modality(checkpoints: dict[str, dict[str, Path]], key: str) -> None:
    """Plain FILES serve one modality; models of several need a sheet with a column each."""
    if key != "path":
        return
    from deepself.inference import load_checkpoint

    modalities = {}
    for name, folds in checkpoints.items():
        meta = load_checkpoint(next(iter(folds.values())))["store_meta"]
        modalities.setdefault(meta.get("modality"), name)
    if len(modalities) > 1:
        listed = ", ".join(f"{m} ({name})" for m, name in modalities.items())
        raise DeepselfError(f"the models read several modalities: {listed}; give --sheet, a CSV with one "
                            "column of files per modality")


def samples_from(files: list[str], sheet: str | None) -> tuple[pd.DataFrame, str]:
    """The samples to predict: FILES as a ``path`` column, or a sample sheet with ids and file columns.

    Relative paths in a sheet are relative to the sheet, as in the workflow's sample sheet; the
    ``id`` column defaults to the first column's file names without extension.
    """
    import pandas as pd

    from deepself.io.sheet import read_user_sheet

    if bool(files) == bool(sheet):
        raise DeepselfError("give the FILES to predict, or --sheet with one column of files per modality (not both)")
    if files:
        return pd.DataFrame({"path": [str(f) for f in files]}), "FILES"
    frame = read_user_sheet(sheet)
    if frame.empty:
        raise DeepselfError(f"{sheet}: no samples")
    base = Path(sheet).resolve().parent
    columns = [c for c in frame.columns if c not in ("id", "label", "fold", "group")]
    for column in columns:
        frame[column] = [value if not value or Path(value).is_absolute() else str(base / value)
                         for value in frame[column]]
    if "id" not in frame.columns:
        if not columns:
            raise DeepselfError(f"{sheet}: no column of files")
        frame.insert(0, "id", [Path(p).stem for p in frame[columns[0]]])
    duplicate = frame["id"][frame["id"].duplicated()]
    if len(duplicate):
        raise DeepselfError(f"{sheet}: duplicate sample id {duplicate.iloc[0]!r} (ids must be unique)")
    return frame, str(sheet)


def write_predictions(frame: pd.DataFrame, out: str | os.PathLike | None) -> None:
    """Write the CSV to ``out`` (atomically) or to standard output."""
    from deepself.io.atomic import atomic_path

    if out is None:
        sys.stdout.write(frame.to_csv(index=False))
        return
    if Path(out).is_dir():
        raise DeepselfError(f"--out {out}: is a folder; give the path of the CSV file to write")
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)


def run(args) -> None:
    samples, origin = samples_from(args.files, args.sheet)
    frame = predict(args.source, samples, model=args.model, fusion=args.fusion, batch_size=args.batch_size,
                    origin=origin)
    write_predictions(frame, args.out)
    log.info("%d samples predicted -> %s", len(frame), args.out or "standard output")


def add_parser(subparsers) -> None:
    """Register ``deepself predict`` on the command line's subparsers."""
    p = subparsers.add_parser(
        "predict", help="predict the class of new files with a trained model, an experiment's folds, or a fusion",
        description="Apply the stored ingest, filter, feature and normalisation steps of trained models to new "
                    "files and write id, [label,] pred, p_<class>... as CSV. A results/<experiment> folder averages "
                    "the probabilities of every fold's model.")
    p.add_argument("source", metavar="MODEL_OR_EXPERIMENT",
                   help="a checkpoint.pt (one fold's model) or a results/<experiment> folder (every fold's model)")
    p.add_argument("files", nargs="*", metavar="FILES", help="files to predict (of the model's one modality)")
    p.add_argument("--sheet", help="instead of FILES: CSV with an optional id column and one column of files per "
                                   "modality (named as data.modalities.<name>.column)")
    p.add_argument("--model", help="experiment only: the model to apply when it has several")
    p.add_argument("--fusion", help="experiment only: fuse the models of this fusion of <experiment>/config.json")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", help="CSV to write (default: standard output)")
    p.set_defaults(run=run)

