"""Apply trained models to new files: ``deepself predict MODEL_OR_EXPERIMENT FILES...``.

A checkpoint carries the meta of the store its model learned from, and with it every step that
made that store: how the files were read (the modality's ingest settings, ``store_meta["ingest"]``:
sample rate, resampling, crop or pad, image size and mode), the band-pass (``filter``), the
feature map (``feature_kind``, ``feature_params``), and the normalisation statistics of the
fold's training part. :func:`model_input` replays those steps on one new file with the very
functions the stages use (the readers, ingest's resampling and crop/pad, ``bandpass``,
``features.compute``), so that a file of the training set gets exactly the input it had there.

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

from deepself.errors import DeepselfError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)


def ingest_spec(meta: dict) -> dict:
    """How the store's files were read: ``meta["ingest"]``, the modality's validated config."""
    return meta["ingest"]


def model_input(path: str | os.PathLike, checkpoint: dict) -> np.ndarray:
    """One file as the checkpoint's model input, before normalisation: exactly the steps of its store.

    Signals: read, resampled and cropped or zero-padded to the stored length as ingest does,
    band-passed when the store was, then the stored feature map. Images: read at the stored size
    and colour mode.

    Parameters
    ----------
    path
        An audio, sensor or image file of the kind the model learned from.
    checkpoint
        As :func:`deepself.inference.load_checkpoint` returns it.

    Returns
    -------
    numpy.ndarray
        float32 of shape :func:`deepself.inference.input_shape`.

    Raises
    ------
    DeepselfError
        Naming the file when it cannot be read, has another sample rate or channel count than
        the model's input shape.
    """
    import numpy as np

    from deepself.inference import input_shape, shape_text
    from deepself.io import ingest, readers
    from deepself.signal import features, filtering

    meta = checkpoint["store_meta"]
    spec = ingest_spec(meta)
    expected = input_shape(checkpoint)
    if meta["kind"] == "image":
        x = readers.read_image(path, spec["image_mode"], spec["image_size"])
    else:
        if spec.get("sample_rate") is None and readers.kind_of(str(path)) != "audio":
            # the model's files carried their own rate (audio); a bare array says nothing of its rate
            raise DeepselfError(f"{path}: the model learned from audio at {meta['sample_rate']:g} Hz; give an "
                                f"audio file ({', '.join(readers.AUDIO_EXT)})")
        x, rate = ingest.read_signal(str(path), spec)  # reader and resampling, as ingest does
        if rate != meta["sample_rate"]:
            hint = "" if spec.get("resample") else " (the model was trained without resampling)"
            raise DeepselfError(f"{path}: sample rate {rate:g} Hz, the model learned from signals at "
                                f"{meta['sample_rate']:g} Hz{hint}")
        if x.shape[0] != meta["n_channels"]:
            raise DeepselfError(f"{path}: {x.shape[0]} channels, the model learned from signals with "
                                f"{meta['n_channels']}")
        if not checkpoint.get("windows"):  # a windowed model takes a recording of any length of one window or more
            x = _fit_length(x, int(meta["n_samples"]), rate, path)
        modality = meta.get("modality", "<name>")
        if meta.get("filter"):
            x = filtering.bandpass(x, rate, meta["filter"]["band"], meta["filter"]["order"],
                                   key=f"data.modalities.{modality}.filter")
        if meta.get("feature_kind"):
            x = features.compute(meta["feature_kind"], x, rate, meta["feature_params"],
                                 key=f"features.{meta.get('feature', '<name>')}")
    windowed = checkpoint.get("windows")
    if tuple(x.shape[:-1] if windowed else x.shape) != (expected[:-1] if windowed else expected):
        raise DeepselfError(f"{path}: gives an input of {shape_text(x.shape)}, the model takes "
                            f"{shape_text(expected)}{' (any length along the last axis)' if windowed else ''}")
    if windowed:
        from deepself.windows import starts

        starts(x.shape[-1], windowed["length"], windowed["eval_hop"], what=str(path))  # shorter than a window: refused
    return np.ascontiguousarray(x, dtype=np.float32)


def _fit_length(x: np.ndarray, length: int, rate: float, path) -> np.ndarray:
    """``x`` cropped or zero-padded to the trained ``length`` as ingest did, with a warning naming the file."""
    from deepself.io import ingest

    if x.shape[-1] != length:
        done = "cropped" if x.shape[-1] > length else "zero-padded"
        log.warning("%s: %d samples (%.3g s), the model learned from %d (%.3g s): %s to %d samples", path,
                    x.shape[-1], x.shape[-1] / rate, length, length / rate, done, length)
    return ingest.fit_length(x, length)


# --- experiments: every fold's checkpoint, one model or a fusion ---------------------------------

def read_experiment_config(experiment: Path) -> dict | None:
    """``<experiment>/config.json``, the validated config the workflow ran with (None if absent)."""
    path = experiment / "config.json"
    if not path.exists():
        return None
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DeepselfError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise DeepselfError(f"{path}: not an experiment config (a JSON object)")
    return config


def _members(experiment: Path, config: dict | None, model: str | None, fusion: str | None) -> tuple[list[str], dict]:
    """The models to apply and how they combine in each fold: the fusion's config (``method``, ``top``, ``rounds``)."""
    models_dir = experiment / "models"
    trained = sorted(p.name for p in models_dir.iterdir() if p.is_dir()) if models_dir.is_dir() else []
    if model and fusion:
        raise DeepselfError("give --model or --fusion, not both")
    if fusion:
        if config is None:
            raise DeepselfError(f"{experiment / 'config.json'}: no such file; --fusion reads the fusion's models "
                                "and method from the experiment's config")
        fusions = config.get("fusions") or {}
        if fusion not in fusions:
            raise DeepselfError(f"--fusion {fusion}: not a fusion of {experiment} "
                                f"(fusions: {', '.join(fusions) or 'none'})")
        return list(fusions[fusion]["models"]), {"method": "mean", **fusions[fusion]}
    if not trained:
        raise DeepselfError(f"{experiment}: no trained models (no models/<model>/fold<k>/checkpoint.pt); "
                            "give a results/<experiment> folder or a checkpoint.pt")
    if model:
        if model not in trained:
            raise DeepselfError(f"--model {model}: {experiment} has no such model (models: {', '.join(trained)})")
        return [model], {"method": "mean"}
    if len(trained) > 1:
        raise DeepselfError(f"{experiment}: holds the models {', '.join(trained)}; choose one with --model "
                            "or a fusion with --fusion")
    return trained, {"method": "mean"}


def _expected_folds(experiment: Path, config: dict | None) -> list[str] | None:
    """The experiment's held-out folds when its config and samples.csv say them, else None."""
    from deepself.io.sheet import held_out_folds, read_sheet

    samples = experiment / "samples.csv"
    if config is None or "cv" not in config or not samples.exists():
        return None
    return held_out_folds(sorted(read_sheet(samples)["fold"].unique()), config["cv"])


def fold_checkpoints(experiment: str | os.PathLike, model: str, folds: list[str] | None = None) -> dict[str, Path]:
    """Fold -> ``models/<model>/fold<k>/checkpoint.pt``; every fold of ``folds`` must have one."""
    experiment = Path(experiment)
    found = {p.parent.name[len("fold"):]: p for p in (experiment / "models" / model).glob("fold*/checkpoint.pt")}
    if folds is None:
        if not found:
            raise DeepselfError(f"{experiment / 'models' / model}: no fold<k>/checkpoint.pt (model {model!r} "
                                "is not trained)")
        return dict(sorted(found.items()))
    missing = [fold for fold in folds if fold not in found]
    if missing:
        raise DeepselfError(f"{experiment / 'models' / model / f'fold{missing[0]}' / 'checkpoint.pt'}: no such file; "
                            f"model {model!r} is not trained on every fold (run the workflow to the end)")
    return {fold: found[fold] for fold in folds}


def fold_weights(experiment: Path, fusion: str | None, spec: dict, fold: str, names: list[str],
                 dev_uars: list[float]) -> np.ndarray:
    """The weight of each of ``names`` in ``fold``: those the fuse stage chose, as the report scores them.

    ``fusions/<fusion>/fold<k>/weights.json`` when the fuse stage wrote it; else chosen again from
    the checkpoints' development UARs (``mean``, ``weighted``, ``top``). ``select`` learns its
    weights in the fuse stage only, and needs the file.
    """
    from deepself.fusion import member_weights, read_weights

    path = experiment / "fusions" / str(fusion) / f"fold{fold}" / "weights.json"
    if fusion and path.exists():
        return read_weights(path, names, spec)
    if spec["method"] == "select":
        raise DeepselfError(f"{path}: no such file; fusion {fusion!r} (method select) learns its weights in the "
                            "workflow's fuse stage: run the workflow (snakemake) to the end first")
    return member_weights(spec["method"], len(names), dev_uars, spec.get("top"))[0]


# --- predicting -----------------------------------------------------------------------------------

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
        from deepself import windows

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
    import numpy as np
    import pandas as pd

    from deepself.fusion import late_fusion

    source = Path(source)
    key = "path" if "path" in samples.columns and "id" not in samples.columns else "id"
    inputs = _Inputs(samples, key, origin or "the sample sheet")
    if source.is_dir():
        config = read_experiment_config(source)
        names, spec = _members(source, config, model, fusion)
        expected = _expected_folds(source, config)
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
    elif source.exists():
        if model or fusion:
            raise DeepselfError(f"{source}: --model and --fusion choose within an experiment folder, "
                                "not a checkpoint")
        proba, checkpoint = _checkpoint_proba(source, inputs, batch_size, None)
        classes = list(checkpoint["classes"])
    else:
        raise DeepselfError(f"{source}: no such checkpoint file or experiment folder")
    bad = ~np.isfinite(proba).all(axis=1)
    if bad.any():
        raise DeepselfError(f"{samples[key].iloc[int(np.flatnonzero(bad)[0])]}: the model gives non-finite "
                            "probabilities; check the file for huge or non-finite values")
    out = pd.DataFrame({"id": samples[key].to_numpy()})
    if "label" in samples.columns:
        out["label"] = samples["label"].to_numpy()
    out["pred"] = [classes[i] for i in proba.argmax(1)]
    for c, name in enumerate(classes):
        out[f"p_{name}"] = proba[:, c]
    return out


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
    from deepself.io.store import atomic_path

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
