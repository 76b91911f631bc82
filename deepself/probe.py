"""``train_mode: probe``: a standardised, L2-regularised logistic regression on frozen embeddings, folded
into the network's classifier.

A pretrained network declares its embedding (``forward_features``) and head (``forward_head``,
``get_classifier``; see :class:`deepself.models.backbone.PretrainedNet`). The probe:

1. embeds every sample of the fold once, in eval mode, on the normalised inputs:
   ``forward_head(forward_features(x), pre_logits=True)``, the input of the classifier;
2. for each C of :data:`C_GRID`, fits scikit-learn's ``StandardScaler`` + ``LogisticRegression(C)``
   on the fit split and scores it on the development split (UAR, then log-loss: the smallest
   log-loss among the Cs of the best UAR wins, so that ties between Cs are broken on the dev
   split too); the held-out fold is never seen;
3. refits the chosen C on the fit and development splits together (all of the training folds),
   as ``LogisticRegressionCV(refit=True)`` does;
4. folds the scaler into the coefficients, ``W / s`` and ``b - W m / s``, and writes them into the
   classifier, so that the network maps inputs to the regression's probabilities (softmax of its
   decision function; for two classes the logits ``[0, z]``). The checkpoint, ``predict`` and
   ``export`` then need nothing of scikit-learn.

The history has one row per C tried (``epoch`` is its index, from 1), with the fit split's and the
development split's log-loss and the development UAR, so the report's curves still apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.inference import Forward
from deepself.metrics import uar

log = logging.getLogger(__name__)

# Inverse L2 strengths tried on the development split, log-spaced around scikit-learn's default 1.
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
# Augmentations change inputs (or mix them), which a probe embeds once and never sees again.
AUGMENT = ("specaugment", "shift", "gain_db", "flip", "crop_pad", "mixup")


def check_augment(hp: dict, name: str) -> None:
    """Refuse augmentation for a probe, naming the key."""
    used = [key for key in AUGMENT if hp["augment"][key]]
    if used:
        raise DeepselfError(f"config key train.augment.{used[0]} (model {name}): train_mode probe fits a logistic "
                            f"regression on embeddings computed once, so augmentation cannot apply")


@torch.no_grad()
def embed(model: nn.Module, x: torch.Tensor, forward: Forward, batch_size: int) -> tuple[nn.Linear, torch.Tensor]:
    """The classifier and the input it takes, ``forward_head(forward_features(x), pre_logits=True)``, of
    every sample of ``x`` (float32, on the forward's device)."""
    model.eval()
    started = time.perf_counter()
    parts = []
    for i in range(0, len(x), batch_size):
        with forward.autocast():
            features = model.forward_features(forward.inputs(x[i : i + batch_size]))
            parts.append(model.forward_head(features, pre_logits=True).float().flatten(1))
    embeddings = torch.cat(parts)
    log.info("probe: %d samples embedded once into %d values each in %.1fs", len(embeddings), embeddings.shape[1],
             time.perf_counter() - started)
    return model.get_classifier(), embeddings


def _regression(c: float, balanced: bool):
    from sklearn.linear_model import LogisticRegression  # imported here: predict never fits
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000,
                                                              class_weight="balanced" if balanced else None))


def _log_loss(pipeline, x: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, pipeline.predict_proba(x), labels=np.arange(n_classes)))


def fit(classifier: nn.Linear, embeddings: torch.Tensor, y: np.ndarray, fit_index: np.ndarray,
        dev_index: np.ndarray, n_classes: int, *, balanced: bool = False, c_grid=C_GRID,
        decide: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None) -> tuple[list, dict]:
    """Choose C on the development split, refit on fit + dev, write the regression into ``classifier``.

    Parameters
    ----------
    classifier
        The network's last linear layer (``get_classifier()``); its weights are overwritten.
    embeddings
        ``(n, D)`` inputs of the classifier for every sample of the fold (held-out ones included,
        which are not read here).
    y
        Class indices of every sample.
    fit_index, dev_index
        The fit and development splits (indices into ``embeddings``).
    n_classes
        Number of classes (the classifier's outputs).
    balanced
        Weigh classes by the inverse of their frequency (``train.class_weights``).
    c_grid
        The Cs tried.
    decide
        With windows (``embeddings`` are windows'): ``decide(proba) -> (labels, proba)`` of the
        development recordings from the probabilities of the development windows (rows in the order
        of ``dev_index``), so that C is chosen on recording-level UAR and log-loss, as a network's
        epoch is. Without it, the development split's rows are scored as they are.

    Returns
    -------
    history, best
        One row per C (``epoch``, ``C``, ``train_loss``, ``dev_loss``, ``dev_uar``, ``seconds``), and
        ``{"epoch", "C", "dev_uar", "state_dict"}`` of the chosen C (the classifier's new weights).
    """
    from sklearn.metrics import log_loss  # imported here: predict never fits

    x = embeddings.detach().cpu().double().numpy()
    if not np.isfinite(x).all():
        raise DeepselfError("train_mode probe: the backbone gave non-finite embeddings")
    absent = sorted(set(range(n_classes)) - set(y[fit_index].tolist()))
    if absent:
        raise DeepselfError(f"train_mode probe: class {absent[0]} is absent from the fit split")
    history = []
    for i, c in enumerate(c_grid, start=1):
        t0 = time.perf_counter()
        pipeline = _regression(c, balanced).fit(x[fit_index], y[fit_index])
        proba = pipeline.predict_proba(x[dev_index])
        y_dev, p_dev = decide(proba) if decide else (y[dev_index], proba)
        dev_uar = uar(y_dev, p_dev.argmax(1), n_classes)
        history.append({"epoch": i, "C": c, "train_loss": _log_loss(pipeline, x[fit_index], y[fit_index], n_classes),
                        "dev_loss": float(log_loss(y_dev, p_dev, labels=np.arange(n_classes))), "dev_uar": dev_uar,
                        "seconds": time.perf_counter() - t0})
        log.info("probe C %-6g  fit log-loss %.4f  dev log-loss %.4f  dev UAR %.4f", c, history[-1]["train_loss"],
                 history[-1]["dev_loss"], dev_uar)
    chosen = min(history, key=lambda row: (-row["dev_uar"], row["dev_loss"]))
    pool = np.concatenate([fit_index, dev_index])
    pipeline = _regression(chosen["C"], balanced).fit(x[pool], y[pool])
    set_classifier(classifier, pipeline, n_classes)
    log.info("probe: C %g chosen on the development split (UAR %.4f), refitted on %d samples", chosen["C"],
             chosen["dev_uar"], len(pool))
    best = {"epoch": chosen["epoch"], "C": chosen["C"], "dev_uar": chosen["dev_uar"],
            "state_dict": {k: v.detach().cpu().clone() for k, v in classifier.state_dict().items()}}
    return history, best


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
