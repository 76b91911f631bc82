"""The rockets' head (aeon's ``MiniRocketClassifier`` and ``MultiRocketClassifier``): a ridge on scaled features.

:func:`fit_ridge` is the rockets' default head: :func:`ridge_cv` chooses the ridge's alpha
(leave-one-out, or k-fold over the recordings of a :class:`~deepself.training.probe.Part`),
:func:`fit_temperature` maps its decision scores to probabilities, and :func:`set_ridge_head` writes
the scaler (:class:`FeatureScaler`), coefficients and temperature into the rocket's head
(:class:`deepself.models.rocket.RocketHead`). Like the logistic probe
(:func:`deepself.training.probe.fit`), it returns its out-of-sample probabilities of the training
part's recordings, and a history of one row per alpha tried.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.scoring.metrics import uar
from deepself.training.probe import N_SPLITS, Part, features_of, scores

log = logging.getLogger(__name__)

# The ridge's strengths: aeon's MiniRocketClassifier / MultiRocketClassifier grid.
ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 10))
T_BOUNDS = (1e-2, 1e2)  # the softmax temperatures fit_temperature may choose


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
