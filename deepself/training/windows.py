"""Windows of long recordings: where they start, cutting them batch by batch, deciding per recording.

A model with ``windows: {length_s, hop_s, ...}`` learns from windows of each recording and decides
per recording. Windows are cut from the model's input as the store holds it: the filtered signal,
or the recording's feature map. Cutting the map (rather than computing a map per window) is
exact and cheap: every frame is computed once, with its real neighbours instead of the zero
padding a map of the window alone would have at its edges, and overlapping windows share it.
Training, ``predict`` and ``export`` all cut the same way, so a window's input is the same
everywhere. Lengths and hops in seconds become frames at the store's frame rate
(:func:`frame_rate`).

Windows are never materialised beyond one batch: a window is a (recording, start) pair, 16 bytes,
and :class:`Windows` cuts the ones a batch asks for, reading only their frames. Memory grows with
the recordings (the store) plus 16 bytes per window plus one batch of windows; evaluation also keeps
each window's class probabilities until its recording is decided. ``benchmarks/windows.py`` measures
it on Bonn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from deepself.errors import DeepselfError

AGGREGATES = ("mean", "log_mean")


def frame_rate(meta: dict) -> float:
    """Frames per second along the last axis of a store's samples (its meta as the stages write it).

    Signals: the sample rate. Spectrogram and log-Mel maps: one frame per ``hop_length`` samples;
    scalograms: one column per ``hop`` samples.
    """
    if meta.get("kind") != "signal":
        raise DeepselfError(f"windows: the store holds {meta.get('kind')}s, windows are cut from signals and "
                            "their feature maps only")
    params = meta.get("feature_params") or {}
    hop = params.get("hop_length") or params.get("hop") or 1
    return float(meta["sample_rate"]) / hop


@dataclass(frozen=True)
class Plan:
    """A model's windows in frames: length, training hop, evaluation hop, how to aggregate, random offsets."""

    length: int
    hop: int
    eval_hop: int
    aggregate: str = "mean"
    random_offset: bool = False

    @classmethod
    def from_config(cls, windows: dict, rate: float, key: str = "windows") -> Plan:
        """The config's ``windows`` (seconds) at ``rate`` frames per second; each at least one frame."""
        frames = {name: max(1, round(windows[name] * rate)) for name in ("length_s", "hop_s")}
        eval_hop = windows.get("eval_hop_s") or windows["hop_s"]
        aggregate = windows.get("aggregate", "mean")
        if aggregate not in AGGREGATES:
            raise DeepselfError(f"{key}.aggregate: {aggregate!r} is not one of {list(AGGREGATES)}")
        return cls(frames["length_s"], frames["hop_s"], max(1, round(eval_hop * rate)), aggregate,
                   bool(windows.get("random_offset", False)))

    def to_json(self) -> dict:
        return {"length": self.length, "hop": self.hop, "eval_hop": self.eval_hop, "aggregate": self.aggregate,
                "random_offset": self.random_offset}


def starts(n_frames: int, length: int, hop: int, what: str = "a recording") -> np.ndarray:
    """Starts of the windows of a recording of ``n_frames``: every ``hop``, plus one ending with the recording.

    Raises
    ------
    DeepselfError
        If the recording is shorter than one window.
    """
    if n_frames < length:
        raise DeepselfError(f"{what}: {n_frames} frames, shorter than one window of {length}")
    regular = np.arange(0, n_frames - length + 1, hop, dtype=np.int64)
    if regular[-1] + length < n_frames:  # the end of the recording would go unseen
        regular = np.append(regular, n_frames - length)
    return regular


def index(recordings: np.ndarray, n_frames: int, length: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of ``recordings`` (indices into the store, all of ``n_frames``): (recording, start) arrays.

    The windows of one recording are consecutive, in the order of ``recordings``.
    """
    first = starts(n_frames, length, hop)
    recordings = np.asarray(recordings, dtype=np.int64)
    return np.repeat(recordings, len(first)), np.tile(first, len(recordings))


def cut(x: torch.Tensor, recording: np.ndarray, start: np.ndarray, length: int) -> torch.Tensor:
    """The windows (recording, start) of ``x`` (N, C, [F,] T) as one tensor (B, C, [F,] length)."""
    recording, start = torch.as_tensor(recording), torch.as_tensor(start)
    if len(recording) == 0:
        return x.new_empty((0, *x.shape[1:-1], length))
    steps = start.to(x.device)[:, None] + torch.arange(length, device=x.device)  # (B, length)
    # Indexing recording and time together reads only the windows' frames (picking the recordings
    # first would copy B whole recordings per batch); the indexed axes come first: (B, length, C, [F]).
    return x[recording.to(x.device)[:, None], ..., steps].movedim(1, -1).contiguous()


def jitter(start: np.ndarray, hop: int, n_frames: int, length: int, generator: torch.Generator) -> np.ndarray:
    """Training windows moved by a random offset in [0, hop) each, kept inside the recording."""
    offset = torch.randint(0, hop, (len(start),), generator=generator).numpy()
    return np.minimum(start + offset, n_frames - length)


def aggregate(proba: np.ndarray, recording: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-recording probabilities from window probabilities (rows of ``proba``, windows of ``recording``).

    ``mean``: the mean of the windows' probabilities; ``log_mean``: the mean of their logarithms,
    renormalised to sum to 1 (a normalised geometric mean, as summing log-likelihoods of windows).

    Returns
    -------
    recordings, probabilities
        The recordings in order of first appearance, and one row of probabilities each.
    """
    if how not in AGGREGATES:
        raise DeepselfError(f"windows.aggregate: {how!r} is not one of {list(AGGREGATES)}")
    recordings, first, inverse = np.unique(recording, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep the order in which recordings come
    proba = np.asarray(proba, dtype=np.float64)
    values = np.log(np.clip(proba, 1e-12, None)) if how == "log_mean" else proba
    sums = np.zeros((len(recordings), proba.shape[1]))
    np.add.at(sums, inverse, values)
    means = sums / np.bincount(inverse, minlength=len(recordings))[:, None]
    if how == "log_mean":
        means = np.exp(means - means.max(axis=1, keepdims=True))
        means /= means.sum(axis=1, keepdims=True)
    return recordings[order], means[order]


@runtime_checkable
class Inputs(Protocol):
    """What a model learns from: the samples (a tensor (N, C, [F,] T)), a probe's embeddings (N, D), or
    :class:`Windows` cut from the samples, all alike. Indexing with a slice or an index array or tensor
    gives those inputs as one tensor (B, ...); nothing else is read, so no copy of the data is made."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def device(self) -> torch.device: ...

    def __len__(self) -> int: ...

    def __getitem__(self, index) -> torch.Tensor: ...


class Windows:
    """Windows of recordings ``x`` (N, C, [F,] T), cut only when asked for: a sequence of tensors.

    Indexing with a slice, an integer array or tensor gives the cut windows (B, C, [F,] length),
    so batch loops (``x[i : i + b]``) work on it as on a tensor; :meth:`subset` is a lazy view.
    """

    def __init__(self, x: torch.Tensor, recording: np.ndarray, start: np.ndarray, length: int):
        self.x, self.recording, self.start, self.length = x, np.asarray(recording), np.asarray(start), length

    def __len__(self) -> int:
        return len(self.recording)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.x.shape[1:-1], self.length)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def subset(self, index) -> Windows:
        index = index.cpu().numpy() if isinstance(index, torch.Tensor) else index
        return Windows(self.x, self.recording[index], self.start[index], self.length)

    def __getitem__(self, index) -> torch.Tensor:
        view = self.subset(index)
        return cut(view.x, view.recording, view.start, view.length)


def normalizer(windows: Windows, mode: str, layout: str, batch_size: int = 256) -> dict:
    """:func:`deepself.inference.normalizer` of the windows, computed batch by batch (two passes, float64)."""
    from deepself.inference import pooled_axes

    if mode != "feature":
        return {"mode": mode}
    axes = pooled_axes(layout)
    total, count = 0.0, 0
    for i in range(0, len(windows), batch_size):
        xb = windows[i : i + batch_size].cpu().numpy()
        total = total + xb.sum(axis=axes, keepdims=True, dtype=np.float64)
        count += xb.size // np.prod([xb.shape[a] for a in range(xb.ndim) if a not in axes])
    mean = total / count
    squares = 0.0
    for i in range(0, len(windows), batch_size):
        xb = windows[i : i + batch_size].cpu().numpy().astype(np.float64)
        squares = squares + ((xb - mean) ** 2).sum(axis=axes, keepdims=True)
    std = np.sqrt(squares / count)
    return {"mode": mode, "mean": torch.tensor(mean[0], dtype=torch.float32),
            "std": torch.tensor(np.maximum(std[0], 1e-8), dtype=torch.float32)}


@dataclass
class Parts:
    """One fold's windows: the fit part's (training hop), the development and held-out parts' (evaluation hop).

    ``view`` holds all of them; ``fit``, ``dev``, ``test`` are window indices into it, ``y`` the
    label of every window (its recording's). A recording's windows are all in its part.
    """

    plan: Plan
    view: Windows
    fit: np.ndarray
    dev: np.ndarray
    test: np.ndarray
    y: torch.Tensor

    @classmethod
    def of_fold(cls, x: torch.Tensor, y: torch.Tensor, fit: np.ndarray, dev: np.ndarray, test: np.ndarray,
                plan: Plan) -> Parts:
        """The windows of the recordings ``fit``, ``dev`` and ``test`` (indices into ``x`` and ``y``)."""
        n_frames = x.shape[-1]
        parts = [index(fit, n_frames, plan.length, plan.hop), index(dev, n_frames, plan.length, plan.eval_hop),
                 index(test, n_frames, plan.length, plan.eval_hop)]
        recording = np.concatenate([r for r, _ in parts])
        start = np.concatenate([s for _, s in parts])
        bounds = np.cumsum([0] + [len(r) for r, _ in parts])
        fit_w, dev_w, test_w = (np.arange(bounds[i], bounds[i + 1]) for i in range(3))
        return cls(plan, Windows(x, recording, start, plan.length), fit_w, dev_w, test_w,
                   y.cpu()[torch.from_numpy(recording)])

    def of_recordings(self, recordings: np.ndarray) -> np.ndarray:
        """The window indices of the part whose recordings are ``recordings`` (the dev or held-out part)."""
        for part in (self.dev, self.test, self.fit):
            if len(part) and np.array_equal(np.unique(self.view.recording[part]), np.unique(recordings)):
                return part
        raise DeepselfError("windows: these recordings are not one part of the fold")

    def epoch_view(self, generator: torch.Generator) -> Windows:
        """The windows with the fit part's moved by a random offset (``random_offset``), for one epoch."""
        if not self.plan.random_offset:
            return self.view
        start = self.view.start.copy()
        start[self.fit] = jitter(start[self.fit], self.plan.hop, self.view.x.shape[-1], self.plan.length, generator)
        return Windows(self.view.x, self.view.recording, start, self.plan.length)

    def decide(self, proba: np.ndarray, part: np.ndarray, recordings: np.ndarray) -> np.ndarray:
        """Per-recording probabilities, in the order of ``recordings``, from the probabilities of the windows ``part``."""
        order, per_recording = aggregate(proba, self.view.recording[part], self.plan.aggregate)
        position = {r: i for i, r in enumerate(order.tolist())}
        return per_recording[[position[r] for r in np.asarray(recordings).tolist()]]
