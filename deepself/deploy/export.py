"""Export one trained model as a portable bundle: ``model.onnx`` and ``preprocessing.json``, no pickles.

``model.onnx`` takes the model's input *before* normalisation (the feature map, the signal or the
image, float32, ``(batch, *input shape)``, any batch size) and returns the class probabilities
(``(batch, n_classes)``, softmax applied): the fold's normalisation is part of the graph, so a
consumer only has to repeat the reading and feature steps that ``preprocessing.json`` describes.
The statistics are in the JSON too, for a consumer that wants to check or reuse them.

A model trained on windows (``models.<name>.windows``) takes one window, ``(batch, channels, [rows,]
window length)``: the consumer cuts each recording's input (of any length of at least one window)
into windows and averages their probabilities, as ``preprocessing.json``'s ``windows`` and ``steps``
say, exactly as :mod:`deepself.deploy.predict` does.

``preprocessing.json`` holds how files are read (the modality's ingest settings), the store's
sample rate, channels and length (signals are cropped or zero-padded to it), the band-pass, the
feature map and its complete parameters, the normalisation, and the class names in the order of
the output columns. :func:`deepself.deploy.replay.model_input` is the reference implementation of those
steps; ``deepself export --check FILE`` runs files through it and through both PyTorch and
onnxruntime and refuses a bundle whose probabilities differ by more than 1e-4.

As in :mod:`deepself.deploy.predict`, torch and the ONNX packages are imported by the functions that use
them: the command line imports this module for every subcommand.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from deepself.errors import DeepselfError, first_line
from deepself.deploy.replay import ingest_spec, model_input

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

FORMAT = "deepself-bundle/1"
INPUT, OUTPUT = "input", "probabilities"
TOLERANCE = 1e-4
_ONE_FILE_BYTES = 1.8 * 2**30
# the files of a bundle (model.onnx.data: weights past protobuf's 2 GB limit); a folder of these alone may be replaced
BUNDLE_FILES = frozenset({"model.onnx", "preprocessing.json", "model.onnx.data"})


def exported(model: nn.Module, stats: dict) -> nn.Module:
    """The trained model with its normalisation before and a softmax after: what ``model.onnx`` computes."""
    import torch

    from deepself.inference import normalize

    class Exported(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.mode = model, stats["mode"]
            if self.mode == "feature":
                self.register_buffer("mean", stats["mean"].detach().clone().float())
                self.register_buffer("std", stats["std"].detach().clone().float())

        def forward(self, x):
            current = {"mode": self.mode}
            if self.mode == "feature":
                current.update(mean=self.mean, std=self.std)
            return torch.softmax(self.model(normalize(x, current)), dim=1)

    return Exported().eval()


def preprocessing(checkpoint: dict) -> dict:
    """Everything but the network a consumer needs, as plain JSON values (see the module docstring)."""
    from deepself.inference import input_shape

    meta, stats = checkpoint["store_meta"], checkpoint["normalize"]
    feature = None
    if meta.get("feature_kind"):
        feature = {"name": meta.get("feature"), "kind": meta["feature_kind"], "params": meta["feature_params"]}
    normalisation = _normalisation(stats)
    plan = windows_spec(checkpoint)
    steps = _steps(checkpoint, feature, plan)
    return {
        "format": FORMAT,
        "model": {"file": "model.onnx", "arch": checkpoint["model"], "args": checkpoint["model_args"],
                  "input": {"name": INPUT, "shape": ["batch", *input_shape(checkpoint)], "dtype": "float32",
                            "layout": meta.get("layout")},
                  "output": {"name": OUTPUT, "shape": ["batch", len(checkpoint["classes"])],
                             "meaning": "class probabilities (softmax), columns in the order of classes"},
                  "fold": checkpoint.get("fold"), "best_epoch": checkpoint.get("best_epoch"),
                  "dev_uar": checkpoint.get("dev_uar")},
        "classes": list(checkpoint["classes"]),
        "ingest": ingest_spec(meta),
        "signal": {key: meta.get(key) for key in ("kind", "modality", "sample_rate", "n_channels", "n_samples")},
        "filter": meta.get("filter"),
        "feature": feature,
        "normalize": normalisation,
        "windows": plan,
        "steps": steps,
    }


def _normalisation(stats: dict) -> dict:
    """``preprocessing.json``'s ``normalize``: the fold's statistics and the formula the graph applies."""
    normalisation = {"mode": stats["mode"], "in_graph": True}
    if stats["mode"] == "feature":
        normalisation.update(mean=stats["mean"].tolist(), std=stats["std"].tolist(),
                             formula="(x - mean) / std; mean and std broadcast over one input")
    elif stats["mode"] == "sample":
        normalisation["formula"] = ("(x - x.mean()) / max(x.std(ddof=1), 1e-8), over all values of one input")
    return normalisation


def _steps(checkpoint: dict, feature: dict | None, plan: dict | None) -> list[str]:
    """``preprocessing.json``'s ``steps``: what a consumer does to a file, in words, up to the probabilities."""
    from deepself.inference import input_shape

    meta = checkpoint["store_meta"]
    signal = meta["kind"] == "signal"
    steps = ["read the file (audio: wav/flac/ogg; sensor: txt/csv/tsv/npy as time x channels; image: png/jpg/bmp)"]
    if signal:
        steps.append("resample to signal.sample_rate when ingest.resample is set (librosa.resample, soxr_hq)")
        if not plan:  # windows take a recording of any length
            steps.append("crop or zero-pad the end to signal.n_samples")
        if meta.get("filter"):
            steps.append("band-pass: sos = scipy.signal.butter(filter.order, filter.band, 'bandpass', "
                         "fs=signal.sample_rate, output='sos'); scipy.signal.sosfiltfilt(sos, x, axis=-1)")
        if feature:
            steps.append(f"feature map: deepself.signal.features.{feature['kind']} with feature.params")
    else:
        steps.append("resize to ingest.image_size (bilinear) and convert to ingest.image_mode; scale to [0, 1]")
    if plan:
        steps.append("cut windows along the last axis of that input (n_frames long): windows.length frames "
                     "starting at 0, windows.eval_hop, 2 * windows.eval_hop, ... while a whole window fits, plus "
                     "one starting at n_frames - windows.length when those miss the end; a recording shorter "
                     "than windows.length frames has no decision")
    steps.append(f"run model.onnx on the float32 batch ({'windows' if plan else 'batch'}, "
                 f"{', '.join(map(str, input_shape(checkpoint)))}); normalisation and softmax are in the graph")
    if plan:
        steps.append(f"the recording's probabilities: {plan['formula']}")
    return steps


AGGREGATE_FORMULAS = {
    "mean": "the mean of its windows' probabilities, column by column",
    "log_mean": "p = exp(mean over its windows of log(max(probability, 1e-12))), column by column, then "
                "p / p.sum() (a normalised geometric mean)",
}


def windows_spec(checkpoint: dict) -> dict | None:
    """How a windowed model's recordings are cut and decided, for ``preprocessing.json`` (None: whole inputs).

    Lengths are in frames of the model's input (samples of the signal, or columns of its feature
    map) and in seconds; only the evaluation hop matters here (the training hop is given for the record).
    """
    from deepself.training.windows import frame_rate

    plan = checkpoint.get("windows")
    if not plan:
        return None
    rate = frame_rate(checkpoint["store_meta"])
    return {"length": plan["length"], "eval_hop": plan["eval_hop"], "train_hop": plan["hop"],
            "unit": "frames along the last axis of the model's input", "frame_rate": rate,
            "length_s": plan["length"] / rate, "eval_hop_s": plan["eval_hop"] / rate,
            "aggregate": plan["aggregate"], "formula": AGGREGATE_FORMULAS[plan["aggregate"]]}


def export_checkpoint(checkpoint_path: str | os.PathLike, out: str | os.PathLike,
                      check_files: list[str] | None = None) -> dict:
    """Write ``model.onnx`` and ``preprocessing.json`` of a checkpoint into the folder ``out``.

    Parameters
    ----------
    checkpoint_path
        One fold's ``checkpoint.pt``.
    out
        Folder of the bundle; made complete under a temporary name and then moved there, so an
        interrupted export leaves no half bundle. It must be new, empty, or hold exactly a deepself
        bundle (which is replaced); any other folder is refused (see :func:`check_out_folder`).
    check_files
        Files to run through :func:`deepself.deploy.replay.model_input`, PyTorch and onnxruntime
        (needs the ``onnxruntime`` package); the export fails if the probabilities differ by
        more than :data:`TOLERANCE`.

    Returns
    -------
    dict
        The content of ``preprocessing.json``.
    """
    from deepself.inference import build_model, input_shape, load_checkpoint

    check_out_folder(out)  # before the costly export, and again right before replacing
    checkpoint = load_checkpoint(checkpoint_path)
    model = exported(build_model(checkpoint, checkpoint_path), checkpoint["normalize"])
    bundle = preprocessing(checkpoint)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _export_onnx(model, input_shape(checkpoint), tmp / "model.onnx", checkpoint_path)
        (tmp / "preprocessing.json").write_text(json.dumps(bundle, indent=2) + "\n")
        if check_files:
            worst = check_bundle(tmp, checkpoint, check_files, model.model)
            log.info("onnxruntime and PyTorch agree on %d files (largest difference %.2g)", len(check_files), worst)
        for old in check_out_folder(out):
            old.unlink()
        if out.exists():
            out.rmdir()  # empty now: never a folder with anything but a bundle in it
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s -> %s (model.onnx, preprocessing.json)", checkpoint_path, out)
    return bundle


def check_out_folder(out: str | os.PathLike) -> list[Path]:
    """The files of the old bundle in ``out`` that an export may replace; refuse any other ``out``.

    Parameters
    ----------
    out
        The export's folder: new, empty, or holding exactly a deepself bundle (``model.onnx``,
        ``preprocessing.json`` of a deepself format, maybe ``model.onnx.data``; plain files, no
        subfolders).

    Returns
    -------
    list of Path
        The bundle's files (none when ``out`` is new or empty).

    Raises
    ------
    DeepselfError
        When ``out`` is a file or a link, or holds anything else: the export replaces the folder
        whole and must lose nothing of the user's.
    """
    out = Path(out)
    fix = "give a new or empty folder, or remove it first"
    if out.is_symlink():
        raise DeepselfError(f"--out {out}: is a link; {fix}")
    if out.exists() and not out.is_dir():
        raise DeepselfError(f"--out {out}: is a file; give the folder to write the bundle into (new or empty)")
    if not out.exists():
        return []
    entries = sorted(out.iterdir())
    others = [e.name for e in entries if e.name not in BUNDLE_FILES or e.is_symlink() or not e.is_file()]
    names = {e.name for e in entries}
    if entries and (others or not {"model.onnx", "preprocessing.json"} <= names or not _is_bundle_json(out)):
        what = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "") if others else "no complete bundle"
        raise DeepselfError(f"--out {out}: exists and is not a deepself bundle ({what}); the export replaces "
                            f"the whole folder, so {fix}")
    return entries


def _is_bundle_json(folder: Path) -> bool:
    """Whether ``folder/preprocessing.json`` is a deepself bundle's (its ``format``)."""
    try:
        content = json.loads((folder / "preprocessing.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and str(content.get("format", "")).startswith("deepself-bundle/")


def _export_onnx(model: nn.Module, shape: tuple[int, ...], path: Path, source) -> None:
    import torch

    # Batch 2 as the example: torch.export specialises a dimension of size 1.
    example = torch.zeros(2, *shape)
    if any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
        # torch.export unrolls recurrent layers step by step (about a minute for 200 steps, growing
        # with the length); the TorchScript exporter writes ONNX's own RNN, LSTM and GRU operators.
        how = {"dynamo": False, "dynamic_axes": {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}}
    else:
        # One file unless the weights pass protobuf's 2 GB limit; then they go to model.onnx.data beside it.
        large = sum(p.numel() * p.element_size() for p in model.state_dict().values()) > _ONE_FILE_BYTES
        how = {"dynamo": True, "dynamic_shapes": ({0: torch.export.Dim("batch")},), "external_data": large}
    quiet = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [logger.level for logger in quiet]
    try:
        for logger in quiet:  # their optimiser logs every pass at INFO
            logger.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                              verbose=False, **how)
    except ImportError as err:
        raise DeepselfError(f"{source}: ONNX export needs the packages onnx and onnxscript ({err})") from None
    except Exception as err:  # torch.export and the ONNX translation raise many kinds; name the model
        raise DeepselfError(f"{source}: the {type(model.model).__name__} model cannot be exported to ONNX "
                            f"({type(err).__name__}: {first_line(err)[:300]})") from None
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)


def check_bundle(bundle: str | os.PathLike, checkpoint: dict, files: list[str], model) -> float:
    """Largest difference between onnxruntime on ``model.onnx`` and PyTorch's ``model`` (the checkpoint's), over ``files``."""
    import numpy as np
    import torch

    from deepself.inference import checkpoint_forward, predict_proba

    try:
        import onnxruntime
    except ImportError:
        raise DeepselfError("--check needs the package onnxruntime (pip install onnxruntime)") from None
    inputs, owner = [model_input(f, checkpoint) for f in files], list(files)
    plan = checkpoint.get("windows")
    if plan:  # the model takes one window: compare on every window of every file
        from deepself.training.windows import starts

        cut = [(f, x[..., s : s + plan["length"]]) for f, x in zip(files, inputs, strict=True)
               for s in starts(x.shape[-1], plan["length"], plan["eval_hop"])]
        owner, inputs = [f for f, _ in cut], [w for _, w in cut]
    x = np.stack(inputs)
    session = onnxruntime.InferenceSession(str(Path(bundle) / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_proba = session.run([OUTPUT], {INPUT: x})[0]
    torch_proba = predict_proba(model, torch.from_numpy(x), checkpoint_forward(checkpoint), len(x)).numpy()
    difference = np.abs(onnx_proba - torch_proba).max(axis=1)
    worst = float(difference.max())
    if worst > TOLERANCE:
        raise DeepselfError(f"{owner[int(difference.argmax())]}: onnxruntime's probabilities from {bundle}/model.onnx "
                            f"differ from PyTorch's by {worst:.2g} (more than {TOLERANCE:g})")
    return worst


def run(args) -> None:
    export_checkpoint(args.checkpoint, args.out, args.check)


def add_parser(subparsers) -> None:
    """Register ``deepself export`` on the command line's subparsers."""
    p = subparsers.add_parser(
        "export", help="write a trained model as model.onnx plus preprocessing.json (no pickles)",
        description="Export one fold's checkpoint as a portable bundle: model.onnx (input: the model's input "
                    "before normalisation; output: class probabilities) and preprocessing.json (ingest, filter, "
                    "feature and normalisation parameters, class names).")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a models/<model>/fold<k>/checkpoint.pt")
    p.add_argument("--out", required=True, help="folder to write the bundle to")
    p.add_argument("--check", nargs="+", metavar="FILE",
                   help="files to compare onnxruntime with PyTorch on (needs onnxruntime)")
    p.set_defaults(run=run)
