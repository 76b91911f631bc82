"""Heads fitted on frozen features: ``train_mode: probe`` (a logistic regression) and the rockets' ridge.

Every model declares its embedding (``forward_features``) and head (``forward_head``,
``get_classifier``) and whether it trains as a head fitted on frozen features (its ``train_mode``,
and ``fitted_transform`` for the rockets' transform fitted to the training part: see
:class:`deepself.models.base.Model`); the head is fitted by the model's ``fit_head`` (:func:`fit`, or
a rocket's :func:`fit_ridge`). The trainer embeds every sample (or window) of the fold once, in eval mode
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
- :func:`fit_ridge` (the rockets' default head, as aeon's ``MiniRocketClassifier`` and
  ``MultiRocketClassifier``): :func:`ridge_cv` chooses the ridge's alpha, :func:`fit_temperature`
  maps its decision scores to probabilities, and the scaler, coefficients and temperature are
  written into the rocket's head (:class:`deepself.models.minirocket.RocketHead`).

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

from deepself import windows
from deepself.errors import DeepselfError
from deepself.inference import Forward
from deepself.metrics import uar

if TYPE_CHECKING:
    from deepself.models.base import Model

log = logging.getLogger(__name__)

# Inverse L2 strengths of the logistic regression, log-spaced around scikit-learn's default 1.
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
# The ridge's strengths: aeon's MiniRocketClassifier / MultiRocketClassifier grid.
ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 10))
N_SPLITS = 5  # folds of the cross-validation where leave-one-out does not apply
T_BOUNDS = (1e-2, 1e2)  # the softmax temperatures fit_temperature may choose
# Augmentations change inputs (or mix them), which a probe embeds once and never sees again.
AUGMENT = ("specaugment", "shift", "gain_db", "flip", "crop_pad", "mixup")


def check_augment(hp: dict, name: str) -> None:
    """Refuse augmentation for a probe, naming the key."""
    used = [key for key in AUGMENT if hp["augment"][key]]
    if used:
        raise DeepselfError(f"config key train.augment.{used[0]} (model {name}): train_mode probe fits a logistic "
                            f"regression on embeddings computed once, so augmentation cannot apply")


@torch.no_grad()
def embed(model: Model, x: torch.Tensor, forward: Forward, batch_size: int,
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
        With windows, how the windows' probabilities make a recording's (:func:`deepself.windows.aggregate`);
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


# --- the ridge (the rockets' head) ------------------------------------------------------------------

def targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """The ridge classifier's targets, as scikit-learn codes them: +1 for the class, -1 otherwise, one
    column per class (two classes: one column, +1 for class 1)."""
    coded = 2.0 * np.eye(n_classes)[y] - 1.0
    return coded[:, 1:] if n_classes == 2 else coded


def logits(decision: np.ndarray) -> np.ndarray:
    """Class scores of ridge decision values: as they are, or ``[0, z]`` for two classes' single column."""
    decision = decision.reshape(len(decision), -1)
    return np.hstack([np.zeros_like(decision), decision]) if decision.shape[1] == 1 else decision


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sample_weight(y: np.ndarray, balanced: bool) -> np.ndarray:
    """``n / (n_classes * count)`` of each row's class (scikit-learn's ``balanced``), or ones."""
    if not balanced:
        return np.ones(len(y))
    present, counts = np.unique(y, return_counts=True)
    return (len(y) / (len(present) * counts))[np.searchsorted(present, y)]


class FeatureScaler:
    """aeon's scaling of a rocket's features before its ridge, fitted on the rows it is given.

    Dense features: ``StandardScaler(with_mean=False)`` (divided by their standard deviation, a
    constant feature by 1). Features marked ``sparse`` (Hydra's square-rooted counts): Hydra's
    sparse scaler, ``(x - mu) / (sigma + eps)`` where ``x`` is non-zero and 0 where it is zero,
    with ``sigma`` the unbiased standard deviation and ``eps = (share of zeros) ** 4 + 1e-8``.
    ``mean_`` is ``mu`` for the sparse features and 0 for the dense; ``scale_`` the divisors.
    """

    def __init__(self, sparse: np.ndarray | None = None):
        self.sparse = sparse

    def fit(self, x: np.ndarray) -> FeatureScaler:
        from sklearn.preprocessing import StandardScaler

        self._standard = StandardScaler(with_mean=False).fit(x)
        self.mean_, self.scale_ = np.zeros(x.shape[1]), self._standard.scale_.copy()
        if self._any_sparse:
            s = x[:, self.sparse].astype(np.float64)
            self.mean_[self.sparse] = s.mean(0)
            eps = (s == 0).mean(0) ** 4 + 1e-8
            self.scale_[self.sparse] = (s.std(0, ddof=1) if len(s) > 1 else 0.0) + eps
        return self

    @property
    def _any_sparse(self) -> bool:
        return self.sparse is not None and bool(np.any(self.sparse))

    def transform(self, x: np.ndarray) -> np.ndarray:
        scaled = self._standard.transform(x)  # the dense features exactly as aeon's scaler gives them
        if self._any_sparse:
            s = x[:, self.sparse]
            scaled[:, self.sparse] = (s - self.mean_[self.sparse]) * (s != 0) / self.scale_[self.sparse]
        return scaled


def _ridge_path(x: np.ndarray, coded: np.ndarray, weight: np.ndarray, x_test: np.ndarray, alphas) -> list:
    """Decision values of ``x_test`` of the ridge (with intercept) fitted on ``x``, ``coded`` for each alpha.

    One eigendecomposition of the weighted, centred Gram matrix serves every alpha: with
    ``Xc = sqrt(w) (x - m)`` and ``Yc = sqrt(w) (coded - c)``, the coefficients are
    ``Xc' Q (L + alpha)^-1 Q' Yc`` (scikit-learn's ``Ridge`` with ``sample_weight``, in its dual form).
    """
    root = np.sqrt(weight)[:, None]
    x_offset, y_offset = np.average(x, axis=0, weights=weight), np.average(coded, axis=0, weights=weight)
    xc, yc = (x - x_offset) * root, (coded - y_offset) * root
    eigenvalues, q = np.linalg.eigh(xc @ xc.T)
    cross, qy = (x_test - x_offset) @ xc.T @ q, q.T @ yc
    return [cross @ (qy / (np.maximum(eigenvalues, 0.0) + alpha)[:, None]) + y_offset for alpha in alphas]


def _loo(x: np.ndarray, y: np.ndarray, n_classes: int, alphas, balanced: bool, sparse: np.ndarray | None = None):
    """aeon's head: ``StandardScaler(with_mean=False)`` (:class:`FeatureScaler`) + ``RidgeClassifierCV(alphas)``
    on all rows.

    Its efficient leave-one-out chooses alpha by the mean squared LOO error of the +-1 targets
    (weighted by the class weights); the criterion is passed as a scorer, which is the same
    number, so that ``cv_results_`` keeps each row's LOO decision values for every alpha.
    RidgeClassifierCV keeps the first of tied alphas (``score > best``, in the order given):
    the strongest is given first, so ties go to the stronger regularisation.
    """
    from sklearn.linear_model import RidgeClassifierCV

    coded, weight = targets(y, n_classes), _sample_weight(y, balanced)

    def criterion(_, predictions, __, **___):  # RidgeClassifierCV passes sample_weight too
        return -float(np.mean(weight[:, None] * (predictions.reshape(coded.shape) - coded) ** 2))

    order = np.argsort(alphas)[::-1]
    scaler = FeatureScaler(sparse).fit(x)
    ridge = RidgeClassifierCV(alphas=np.asarray(alphas)[order], scoring=criterion, store_cv_results=True,
                              class_weight="balanced" if balanced else None).fit(scaler.transform(x), y)
    decisions = {float(alphas[j]): ridge.cv_results_[:, :, k] for k, j in enumerate(order)}
    return decisions, scaler, ridge


def _k_fold(x: np.ndarray, part: Part, n_classes: int, alphas, balanced: bool, folds,
            sparse: np.ndarray | None = None) -> dict:
    """Out-of-fold decision values of every row for each alpha (scaler and ridge fitted per fold)."""
    y = part.row_y
    coded = targets(y, n_classes)
    decisions = {float(a): np.zeros(coded.shape) for a in alphas}
    for train, test in folds:
        scaler = FeatureScaler(sparse).fit(x[train])
        path = _ridge_path(scaler.transform(x[train]), coded[train], _sample_weight(y[train], balanced),
                           scaler.transform(x[test]), alphas)
        for alpha, decision in zip(alphas, path, strict=True):
            decisions[float(alpha)][test] = decision
    return decisions


def ridge_cv(x: np.ndarray, part: Part, n_classes: int, *, balanced: bool = False, alphas=ALPHAS, seed: int = 0,
             n_splits: int = N_SPLITS, sparse: np.ndarray | None = None) -> tuple[float, dict, list, tuple, str]:
    """Choose the ridge's alpha by cross-validation over the training part, and fit it on all of it.

    Leave-one-out (:func:`_loo`, aeon's recipe) when every row is a recording of its own and the
    sheet has no groups; otherwise (windows, groups) stratified k-fold over the recordings,
    grouped (:meth:`Part.folds`), with the same criterion on the out-of-fold decision values of
    the rows, ties to the larger alpha. Then ``StandardScaler(with_mean=False)`` +
    ``RidgeClassifier(alpha)`` on all rows. ``sparse`` marks Hydra's features (:class:`FeatureScaler`).

    Returns
    -------
    alpha, decisions, history, (scaler, ridge), how
        The chosen alpha, every alpha's out-of-sample decision values of the rows, one history row
        per alpha (ascending), the fitted scaler and ridge, and the cross-validation in words.
    """
    from sklearn.linear_model import RidgeClassifier

    y = part.row_y
    if part.independent:
        decisions, scaler, ridge = _loo(x, y, n_classes, alphas, balanced, sparse)
        how = f"leave-one-out over {len(y)} recordings"
    else:
        folds = part.folds(n_splits, seed)
        decisions = _k_fold(x, part, n_classes, alphas, balanced, folds, sparse)
        how = (f"{len(folds)}-fold over {len(part.y)} recordings ({len(y)} rows), grouped by "
               f"{'recording' if part.groups is None else 'group'}")
    coded, weight = targets(y, n_classes), _sample_weight(y, balanced)
    history = []
    for i, alpha in enumerate(sorted(decisions), start=1):
        mse = float(np.mean(weight[:, None] * (decisions[alpha] - coded) ** 2))
        dev_uar = uar(part.y, part.decide(softmax(logits(decisions[alpha]))).argmax(1), n_classes)
        history.append({"epoch": i, "alpha": alpha, "train_loss": float("nan"), "dev_loss": mse, "dev_uar": dev_uar})
    if part.independent:  # the alpha RidgeClassifierCV chose and fitted (the same rule, its own arithmetic)
        return float(ridge.alpha_), decisions, history, (scaler, ridge), how
    alpha = min(history, key=lambda row: (row["dev_loss"], -row["alpha"]))["alpha"]  # ties: the larger alpha
    scaler = FeatureScaler(sparse).fit(x)
    ridge = RidgeClassifier(alpha=alpha, class_weight="balanced" if balanced else None).fit(scaler.transform(x), y)
    return alpha, decisions, history, (scaler, ridge), how


def fit_temperature(z: np.ndarray, part: Part, n_classes: int, bounds=T_BOUNDS) -> float:
    """The temperature T in ``bounds`` whose ``softmax(z / T)`` of the rows' out-of-sample class scores ``z``
    has the least log-loss of the recordings' decisions (bounded Brent search over log T)."""
    from scipy.optimize import minimize_scalar
    from sklearn.metrics import log_loss

    def loss(log_t: float) -> float:
        proba = part.decide(softmax(z / np.exp(log_t)))
        return float(log_loss(part.y, np.clip(proba, 1e-15, 1.0), labels=np.arange(n_classes)))

    found = minimize_scalar(loss, bounds=tuple(np.log(bounds)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


@torch.no_grad()
def set_ridge_head(head: nn.Module, x: np.ndarray, scaler, ridge, temperature: float, n_classes: int) -> None:
    """Write the scaler, the ridge and T into a rocket's head: ``linear((x - mean) / scale) / temperature``.

    The ridge's decision is ``coef (x / s) + b`` for dense features (aeon's scaler does not centre);
    the head centres them on the rows' mean ``m`` for float32 accuracy, so its bias is
    ``b + coef (m / s)``. Sparse features (Hydra's) keep the scaler's own centre.
    """
    coef, intercept = np.atleast_2d(ridge.coef_), np.atleast_1d(ridge.intercept_)
    dense = ~head.sparse.cpu().numpy()
    mean = np.where(dense, x.mean(axis=0), scaler.mean_)
    bias = intercept + coef[:, dense] @ (mean[dense] / scaler.scale_[dense])
    if n_classes == 2:  # one decision column z: logits [0, z]
        coef, bias = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], bias])
    if coef.shape != tuple(head.linear.weight.shape):
        raise DeepselfError(f"rocket head: the ridge is {coef.shape[1]} -> {coef.shape[0]}, the head "
                            f"{head.linear.in_features} -> {head.linear.out_features}")
    head.linear.weight.copy_(torch.from_numpy(coef))
    head.linear.bias.copy_(torch.from_numpy(bias))
    head.mean.copy_(torch.from_numpy(mean))
    head.scale.copy_(torch.from_numpy(scaler.scale_))
    head.temperature.fill_(temperature)


def fit_ridge(head: nn.Module, embeddings: torch.Tensor, part: Part, n_classes: int, *, balanced: bool = False,
              alphas=ALPHAS, seed: int = 0, n_splits: int = N_SPLITS, sparse: np.ndarray | None = None
              ) -> tuple[list, dict, np.ndarray]:
    """A rocket's head as aeon fits it (:func:`ridge_cv`), with a softmax temperature (:func:`fit_temperature`)
    fitted on the chosen alpha's out-of-sample decision values; written into ``head``.

    Returns
    -------
    history, best, proba
        One row per alpha (``dev_loss``: the cross-validated mean squared error of the +-1
        targets); ``{"epoch", "alpha", "temperature", "dev_uar", "dev_loss", "cv", "state_dict"}``
        (``dev_loss``: the log-loss of the calibrated out-of-sample probabilities); and those
        probabilities of the part's recordings.
    """
    started = time.perf_counter()
    x = features_of(embeddings, part)
    alpha, decisions, history, (scaler, ridge), how = ridge_cv(x, part, n_classes, balanced=balanced, alphas=alphas,
                                                              seed=seed, n_splits=n_splits, sparse=sparse)
    z = logits(decisions[alpha])
    temperature = fit_temperature(z, part, n_classes)
    proba = part.decide(softmax(z / temperature))
    dev_uar, dev_loss, top = scores(part.y, proba, n_classes)
    set_ridge_head(head, x, scaler, ridge, temperature, n_classes)
    for row in history:
        row["seconds"] = (time.perf_counter() - started) / len(history)
    log.info("ridge CV (%s): alpha=%.4g, T=%.4g; out-of-sample UAR %.4f, log-loss %.4f, mean top probability "
             "%.3f (%.1fs)", how, alpha, temperature, dev_uar, dev_loss, top, time.perf_counter() - started)
    epoch = next(row["epoch"] for row in history if row["alpha"] == alpha)
    best = {"epoch": epoch, "alpha": alpha, "temperature": temperature, "dev_uar": dev_uar, "dev_loss": dev_loss,
            "cv": how, "state_dict": {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}}
    return history, best, proba
