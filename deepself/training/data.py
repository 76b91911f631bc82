"""The samples of a training job, read once (:class:`TrainingData`), and each fold's split of them (:class:`Split`).

The fold's held-out samples are never seen until the kept model predicts them: the development
split that chooses the epoch and the normalisation statistics both come from the training folds.
A head fitted on frozen features (:func:`fits_a_head`) has no development split.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch

from deepself.errors import DeepselfError
from deepself.inference import normalizer
from deepself.io.sheet import read_sheet
from deepself.io.store import open_store
from deepself.training import windows


def fits_a_head(spec: dict) -> bool:
    """Whether ``spec``'s model is a head fitted on frozen features (``train_mode = "probe"``: a pretrained
    network's ``train_mode: probe`` arg, or a rocket's class), which needs no development split."""
    from deepself.models import registry

    return registry.fits_a_head(spec["arch"], spec["args"])


def dev_split(labels: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int):
    """Indices (fit, dev) of a stratified, seeded split; grouped when groups are given; no dev at fraction 0."""
    if fraction == 0:  # cv.dev_fraction 0: train on everything, keep the last epoch
        return np.arange(len(labels)), np.array([], dtype=np.int64)
    # imported here, not at the top: scikit-learn takes a second to import, and only this needs it
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

    index = np.zeros(len(labels))
    if groups is not None:
        n_splits = max(2, round(1 / fraction))
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return next(splitter.split(index, labels, groups))
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    try:
        return next(splitter.split(index, labels))
    except ValueError as err:
        raise DeepselfError(f"config key cv.dev_fraction: {fraction} cannot make a stratified split "
                            f"of {len(labels)} training samples ({err})") from None


@dataclass
class Split:
    """One fold's parts (indices into the job's samples) and the normalisation of its training part."""

    fold: str
    fit: np.ndarray
    dev: np.ndarray
    test: np.ndarray
    stats: dict
    windows: windows.Parts | None = None  # with ``windows:``, the fold's windows (fit, dev and test are recordings)


class TrainingData:
    """The samples of a training job, read once: inputs, labels, folds and groups of every sample.

    Parameters
    ----------
    sheet_path
        ``samples.csv`` (ids, labels, folds, groups).
    store_path
        The store the model learns from (a feature map, or the raw/filtered signals or images).
    classes
        The configured classes, or None for the sorted labels of the sheet.
    """

    def __init__(self, sheet_path: str | os.PathLike, store_path: str | os.PathLike, classes: list[str] | None):
        sheet = read_sheet(sheet_path)
        self.sheet_path, self.classes = sheet_path, classes or sorted(sheet["label"].unique())
        unknown = sheet[~sheet["label"].isin(self.classes)]
        if len(unknown):
            raise DeepselfError(f"{sheet_path}: sample {unknown['id'].iloc[0]!r} has label "
                                f"{unknown['label'].iloc[0]!r}, which is not a class ({', '.join(self.classes)})")
        self.ids, self.labels, self.folds = (sheet[c].to_numpy() for c in ("id", "label", "fold"))
        self.y = torch.from_numpy(np.array(sheet["label"].map({c: i for i, c in enumerate(self.classes)}),
                                           dtype=np.int64))
        grouped = "group" in sheet.columns and (sheet["group"] != "").all()
        self.groups = sheet["group"].to_numpy() if grouped else None
        with open_store(store_path) as store:
            self.x = torch.from_numpy(store.read(list(self.ids)))
            self.meta, fingerprint = store.meta, store.fingerprint
        # What a resumed run must find unchanged: the store's content and the sheet's assignment.
        sheet_digest = hashlib.sha256(sheet[[c for c in ("id", "label", "fold", "group") if c in sheet]]
                                      .to_csv(index=False).encode()).hexdigest()
        self.content = {"store": fingerprint, "sheet": sheet_digest}
        self.embeddings: dict[str, torch.Tensor] = {}  # a probe's, shared by the folds of the job

    def split(self, fold: str, spec: dict) -> Split:
        """Held-out ``fold``, and a development split of the other folds (``spec``'s dev fraction and seed;
        none for a head fitted on frozen features, :func:`fits_a_head`: its fit part is the whole training part)."""
        held_out = self.folds == str(fold)
        if not held_out.any():
            raise DeepselfError(f"{self.sheet_path}: fold {fold!r} has no samples")
        absent = sorted(set(self.classes) - set(self.labels[~held_out]))
        if absent:
            raise DeepselfError(f"{self.sheet_path}: fold {fold!r}: class {absent[0]!r} is absent from its "
                                "training part")
        pool = np.flatnonzero(~held_out)
        y = self.y.cpu().numpy()
        groups = None if self.groups is None else self.groups[pool]
        fraction = 0.0 if fits_a_head(spec) else spec["dev_fraction"]
        fit, dev = dev_split(y[pool], groups, fraction, spec["cv_seed"])
        if spec.get("windows"):  # recordings are split, then windowed: no recording crosses a boundary
            plan = windows.Plan.from_config(spec["windows"], windows.frame_rate(self.meta),
                                            key=f"models.{spec['name']}.windows")
            parts = windows.Parts.of_fold(self.x, self.y, pool[fit], pool[dev], np.flatnonzero(held_out), plan)
            stats = windows.normalizer(parts.view.subset(parts.fit), spec["train"]["normalize"], self.meta["layout"])
            return Split(str(fold), pool[fit], pool[dev], np.flatnonzero(held_out), stats, parts)
        stats = normalizer(self.x[pool[fit]].cpu().numpy(), spec["train"]["normalize"], self.meta["layout"])
        return Split(str(fold), pool[fit], pool[dev], np.flatnonzero(held_out), stats)

    def to(self, device: torch.device) -> None:
        """Move the inputs to the device once when they fit comfortably there, else pin them for fast copies."""
        if device.type != "cuda" or self.x.device == device:
            return
        free, _ = torch.cuda.mem_get_info(device)
        if self.x.element_size() * self.x.nelement() < 0.5 * free:
            self.x, self.y = self.x.to(device), self.y.to(device)
        elif not self.x.is_pinned():
            self.x, self.y = self.x.pin_memory(), self.y.pin_memory()
