"""Heads fitted on frozen features: ``train_mode: probe`` (a logistic regression); the rockets' ridge is in
:mod:`deepself.training.ridge`.

Every model declares its embedding (``forward_features``) and head (``forward_head``,
``get_classifier``) and whether it trains as a head fitted on frozen features (its ``train_mode``,
and ``fitted_transform`` for the rockets' transform fitted to the training part: see
:class:`deepself.models.base.Model`); the head is fitted by the model's ``fit_head`` (:func:`fit`, or
a rocket's :func:`~deepself.training.ridge.fit_ridge`). The trainer embeds every sample (or window) of the fold once, in eval mode
(:func:`embed`), and fits the head on the embeddings of the WHOLE training part of the fold,
the development split included: a head's hyperparameter is chosen by cross-validation over the
training part (:class:`Part`), never on a single development split, and never on the held-out fold.

- :func:`fit` (``train_mode: probe``, and the rockets' ``head: logistic``): scikit-learn's
  ``StandardScaler`` + ``LogisticRegression(C)`` for each C of :data:`C_GRID`; C is chosen by
  k-fold cross-validation (:data:`N_SPLITS` folds, stratified, grouped by recording and by the
  sheet's ``group``): the out-of-fold predictions of the whole training part are scored by UAR
  (recording-level with windows) and ties go to the smaller C (the stronger regularisation);
  then it is refitted on the whole training part. The scaler is folded into the coefficients,
  ``W / s`` and ``b - W m / s``, written into the classifier (two classes: logits ``[0, z]``).
- :func:`deepself.training.ridge.fit_ridge` (the rockets' default head, as aeon's ``MiniRocketClassifier``
  and ``MultiRocketClassifier``): its ``ridge_cv`` chooses the ridge's alpha, ``fit_temperature``
  maps its decision scores to probabilities, and the scaler, coefficients and temperature are
  written into the rocket's head (:class:`deepself.models.rocket.RocketHead`).

Every fit returns its out-of-sample probabilities of the training part's recordings (those its
hyperparameters were chosen on), which the trainer writes to ``dev_predictions.csv``. The history
has one row per hyperparameter value tried (``epoch`` is its index, from 1), with its
cross-validated loss (``dev_loss``) and UAR (``dev_uar``), so the report's curves still apply.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from deepself.config import AUGMENTATIONS
from deepself.errors import DeepselfError
from deepself.inference import Forward
from deepself.scoring.metrics import uar
from deepself.training import windows

if TYPE_CHECKING:
    from deepself.models.base import Model

log = logging.getLogger(__name__)

# Inverse L2 strengths of the logistic regression, log-spaced around scikit-learn's default 1.
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
N_SPLITS = 5  # folds of the cross-validation where leave-one-out does not apply


def check_augment(hp: dict, name: str) -> None:
    """Refuse augmentation for a probe, naming the key: every one of :data:`deepself.config.AUGMENTATIONS`
    changes inputs (or mixes them), which a probe embeds once and never sees again."""
    used = [key for key in AUGMENTATIONS if hp["augment"][key]]
    if used:
        raise DeepselfError(f"config key train.augment.{used[0]} (model {name}): train_mode probe fits a logistic "
                            f"regression on embeddings computed once, so augmentation cannot apply")


@torch.no_grad()
def embed(model: Model, x: windows.Inputs, forward: Forward, batch_size: int,
          what: str = "probe") -> tuple[nn.Module, torch.Tensor]:
    """The classifier and the input it takes, ``forward_head(forward_features(x), pre_logits=True)``, of
    every sample of ``x`` (float32, on the forward's device); ``what`` names the step in the log."""
    model.eval()
    started = time.perf_counter()
    parts = []
    for i in range(0, len(x), batch_size):
        with forward.autocast():
            features = model.forward_features(forward.inputs(x[i : i + batch_size]))
            parts.append(model.forward_head(features, pre_logits=True).float().flatten(1))
    embeddings = torch.cat(parts)
    log.info("%s: %d inputs embedded once into %d values each in %.1fs", what, len(embeddings), embeddings.shape[1],
             time.perf_counter() - started)
    return model.get_classifier(), embeddings


# --- the training part and its cross-validation ---------------------------------------------------

@dataclass
class Part:
    """The training part a head is fitted on: rows of the embeddings, and the recordings they belong to.

    Parameters
    ----------
    rows
        Indices into the embeddings of the training part's rows (its samples, or their windows).
    recording
        For each row, its recording: a position in ``0 .. len(y) - 1``.
    y
        Class of each recording.
    groups
        The sheet's ``group`` of each recording, or None: cross-validation never puts two
        recordings of one group on both sides.
    aggregate
        With windows, how the windows' probabilities make a recording's (:func:`deepself.training.windows.aggregate`);
        None when every row is a recording of its own.
    """

    rows: np.ndarray
    recording: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None = None
    aggregate: str | None = None

    @classmethod
    def of_samples(cls, rows: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> Part:
        """A part whose rows are the recordings themselves (no windows)."""
        return cls(np.asarray(rows), np.arange(len(rows)), np.asarray(y), groups)

    @property
    def row_y(self) -> np.ndarray:
        """The class of every row (its recording's)."""
        return self.y[self.recording]

    @property
    def independent(self) -> bool:
        """Every row a recording, and no groups: leave-one-out is honest."""
        return self.aggregate is None and self.groups is None

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Per-recording probabilities (recording order) of the probabilities of every row (row order)."""
        out = np.zeros((len(self.y), proba.shape[1]))
        if self.aggregate is None:
            out[self.recording] = proba
            return out
        order, per_recording = windows.aggregate(proba, self.recording, self.aggregate)
        out[order] = per_recording
        return out

    def folds(self, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Stratified k-fold over the recordings (grouped by ``groups``): (train, test) positions into ``rows``.

        ``n_splits`` shrinks to the fewest recordings (or groups) of a class; fewer than two is refused.
        """
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        groups = self.groups if self.groups is not None else np.arange(len(self.y))
        fewest = min(len(set(groups[self.y == c].tolist())) for c in np.unique(self.y))
        n_splits = min(n_splits, fewest)
        if n_splits < 2:
            raise DeepselfError(f"a fitted head chooses its regularisation by cross-validation over the training "
                                f"part, which holds only {fewest} recording(s) (or group(s)) of a class; it needs 2")
        if self.groups is None:
            splits = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(self.y)), self.y)
        else:
            splits = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(self.y)),
                                                                                          self.y, groups)
        return [(np.flatnonzero(np.isin(self.recording, train)), np.flatnonzero(np.isin(self.recording, test)))
                for train, test in splits]


def features_of(embeddings: torch.Tensor, part: Part) -> np.ndarray:
    """The training part's rows of ``embeddings`` as float64, refused when not finite."""
    x = embeddings[torch.from_numpy(np.asarray(part.rows)).to(embeddings.device)].detach().cpu().double().numpy()
    if not np.isfinite(x).all():
        raise DeepselfError("train_mode probe: the backbone gave non-finite embeddings")
    return x


def scores(y: np.ndarray, proba: np.ndarray, n_classes: int) -> tuple[float, float, float]:
    """UAR, log-loss and mean top probability of probabilities ``proba`` of classes ``y``."""
    from sklearn.metrics import log_loss

    if not len(y):
        return float("nan"), float("nan"), float("nan")
    clipped = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1.0)
    loss = float(log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=np.arange(n_classes)))
    return uar(y, proba.argmax(1), n_classes), loss, float(proba.max(1).mean())


# --- the logistic regression ----------------------------------------------------------------------

def _regression(c: float, balanced: bool):
    from sklearn.linear_model import LogisticRegression  # imported here: predict never fits
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000,
                                                              class_weight="balanced" if balanced else None))


def _out_of_fold(x: np.ndarray, y: np.ndarray, folds, c: float, balanced: bool,
                 n_classes: int) -> tuple[np.ndarray, float]:
    """Each row's probabilities from the regression of C ``c`` fitted on the folds that do not hold it,
    and the mean log-loss of those regressions on the rows they were fitted on."""
    from sklearn.metrics import log_loss

    proba, fit_losses = np.zeros((len(x), n_classes)), []
    for train, test in folds:
        pipeline = _regression(c, balanced).fit(x[train], y[train])
        proba[np.ix_(test, pipeline[-1].classes_)] = pipeline.predict_proba(x[test])
        fit_losses.append(log_loss(y[train], pipeline.predict_proba(x[train]), labels=pipeline[-1].classes_))
    return proba, float(np.mean(fit_losses))


def fit(classifier: nn.Linear, embeddings: torch.Tensor, part: Part, n_classes: int, *, balanced: bool = False,
        c_grid=C_GRID, seed: int = 0, n_splits: int = N_SPLITS) -> tuple[list, dict, np.ndarray]:
    """Choose C by cross-validation over the training part, refit on all of it, write it into ``classifier``.

    Parameters
    ----------
    classifier
        The network's last linear layer (``get_classifier()``); its weights are overwritten.
    embeddings
        ``(n, D)`` inputs of the classifier for every row of the fold (held-out ones included,
        which are never read: only ``part.rows`` are).
    part
        The training part (:class:`Part`).
    n_classes
        Number of classes (the classifier's outputs).
    balanced
        Weigh classes by the inverse of their frequency (``train.class_weights``).
    c_grid
        The Cs tried, ascending (ties between them go to the first, the smallest).
    seed
        Seed of the folds' shuffle.
    n_splits
        Folds of the cross-validation (fewer when a class has fewer recordings or groups).

    Returns
    -------
    history, best, proba
        One row per C (``epoch``, ``C``, ``train_loss``: the folds' regressions' mean log-loss on the
        rows they were fitted on, ``dev_loss`` and ``dev_uar``: of the out-of-fold predictions,
        ``dev_mean_top_probability``, ``seconds``); ``{"epoch", "C", "dev_uar", "dev_loss", "state_dict"}``
        of the chosen C; and the chosen C's out-of-fold probabilities of the part's recordings.
    """
    if list(c_grid) != sorted(c_grid):
        raise DeepselfError(f"train_mode probe: the Cs {list(c_grid)} must be in ascending order")
    x, y = features_of(embeddings, part), part.row_y
    folds = part.folds(n_splits, seed)
    history, out_of_fold = [], []
    for i, c in enumerate(c_grid, start=1):
        t0 = time.perf_counter()
        rows, train_loss = _out_of_fold(x, y, folds, c, balanced, n_classes)
        proba = part.decide(rows)
        dev_uar, dev_loss, top = scores(part.y, proba, n_classes)
        history.append({"epoch": i, "C": c, "train_loss": train_loss, "dev_loss": dev_loss, "dev_uar": dev_uar,
                        "dev_mean_top_probability": top, "seconds": time.perf_counter() - t0})
        out_of_fold.append(proba)
        log.info("probe C %-6g  %d-fold CV log-loss %.4f  UAR %.4f", c, len(folds), dev_loss, dev_uar)
    chosen = max(history, key=lambda row: row["dev_uar"])  # the first of the best: the smallest C
    pipeline = _regression(chosen["C"], balanced).fit(x, y)
    set_classifier(classifier, pipeline, n_classes)
    log.info("probe: C %g chosen by %d-fold cross-validation over the training part (UAR %.4f), refitted on "
             "%d rows", chosen["C"], len(folds), chosen["dev_uar"], len(x))
    best = {"epoch": chosen["epoch"], "C": chosen["C"], "dev_uar": chosen["dev_uar"], "dev_loss": chosen["dev_loss"],
            "state_dict": {k: v.detach().cpu().clone() for k, v in classifier.state_dict().items()}}
    return history, best, out_of_fold[chosen["epoch"] - 1]


@torch.no_grad()
def set_classifier(classifier: nn.Linear, pipeline, n_classes: int) -> None:
    """Write ``StandardScaler`` + ``LogisticRegression`` into ``classifier``: logits whose softmax is its
    ``predict_proba``."""
    scaler, regression = pipeline[0], pipeline[-1]
    if classifier.out_features != n_classes or classifier.in_features != len(scaler.mean_):
        raise DeepselfError(f"train_mode probe: the classifier is {classifier.in_features} -> "
                            f"{classifier.out_features}, the regression {len(scaler.mean_)} -> {n_classes}")
    weight = regression.coef_ / scaler.scale_
    bias = regression.intercept_ - weight @ scaler.mean_
    if n_classes == 2:  # one decision function z: P(class 1) = sigmoid(z) = softmax([0, z])[1]
        weight, bias = np.vstack([np.zeros_like(weight), weight]), np.concatenate([[0.0], bias])
    classifier.weight.copy_(torch.from_numpy(weight))
    classifier.bias.copy_(torch.from_numpy(bias))
