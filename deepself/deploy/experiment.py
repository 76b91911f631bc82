"""An experiment folder (``results/<experiment>``) as ``deepself predict`` reads it.

Its ``config.json`` (the validated config the workflow ran with), the models to apply and how they
combine (a model, or a fusion of the config), every fold's ``checkpoint.pt`` and the weights the
fuse stage chose in each fold (``fusions/<fusion>/fold<k>/weights.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from deepself.errors import DeepselfError

if TYPE_CHECKING:
    import numpy as np


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


def members(experiment: Path, config: dict | None, model: str | None, fusion: str | None) -> tuple[list[str], dict]:
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


def expected_folds(experiment: Path, config: dict | None) -> list[str] | None:
    """The experiment's held-out folds when its config and samples.csv say them, else None."""
    from deepself.io.folds import held_out_folds
    from deepself.io.sheet import read_sheet

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
    from deepself.scoring.fusion import read_weights
    from deepself.scoring.selection import member_weights

    path = experiment / "fusions" / str(fusion) / f"fold{fold}" / "weights.json"
    if fusion and path.exists():
        return read_weights(path, names, spec)
    if spec["method"] == "select":
        raise DeepselfError(f"{path}: no such file; fusion {fusion!r} (method select) learns its weights in the "
                            "workflow's fuse stage: run the workflow (snakemake) to the end first")
    return member_weights(spec["method"], len(names), dev_uars, spec.get("top"))[0]

