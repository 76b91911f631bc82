"""Train one model on one cross-validation fold, keep the epoch with the best development UAR, predict.

The fold's held-out samples are never seen until the kept model predicts them: the development
split that chooses the epoch and the normalisation statistics both come from the training folds.
The job saves its whole state after every epoch (``resume.pt`` beside the outputs), so a killed
or pre-empted job that is started again continues where it stopped and ends with the predictions
an uninterrupted run gives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepself.augment import augment, mixup
from deepself.errors import DeepselfError
from deepself.io.sheet import read_sheet
from deepself.io.store import atomic_path, open_store
from deepself.metrics import uar
from deepself.models import create_model, summary

log = logging.getLogger(__name__)

# Axes that normalisation statistics are pooled over, per store layout (axis 0 = samples):
# one mean per channel (and per frequency bin for maps).
_POOLED_AXES = {"CT": (0, 2), "CFT": (0, 3), "CHW": (0, 2, 3)}


def dev_split(labels: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int):
    """Indices (train, dev) of a stratified, seeded split; grouped when groups are given."""
    # imported here, not at the top: `deepself predict` uses this module and never splits
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


def normalizer(x: np.ndarray, mode: str, layout: str) -> dict:
    """Statistics of the training part; applied to every part with :func:`normalize`."""
    if mode != "feature":
        return {"mode": mode}
    axes = _POOLED_AXES[layout]
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)[0]
    std = x.std(axis=axes, keepdims=True, dtype=np.float64)[0]
    return {"mode": mode, "mean": torch.tensor(mean, dtype=torch.float32),
            "std": torch.tensor(np.maximum(std, 1e-8), dtype=torch.float32)}


def normalize(x: torch.Tensor, stats: dict) -> torch.Tensor:
    if stats["mode"] == "feature":
        return (x - stats["mean"].to(x.device)) / stats["std"].to(x.device)
    if stats["mode"] == "sample":
        axes = tuple(range(1, x.ndim))
        return (x - x.mean(axes, keepdim=True)) / x.std(axes, keepdim=True).clamp_min(1e-8)
    return x


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise DeepselfError("config key train.device: cuda, but no CUDA device is available")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 under ``auto`` on CUDA devices that support it; None means plain fp32."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return None


class Fold:
    """The tensors of one fold: inputs, labels and the indices of its fit, dev and held-out parts."""

    def __init__(self, sheet_path, store_path, fold: str, spec: dict):
        sheet = read_sheet(sheet_path)
        self.classes = spec["classes"] or sorted(sheet["label"].unique())
        unknown = sheet[~sheet["label"].isin(self.classes)]
        if len(unknown):
            raise DeepselfError(f"{sheet_path}: sample {unknown['id'].iloc[0]!r} has label "
                                f"{unknown['label'].iloc[0]!r}, which is not a class ({', '.join(self.classes)})")
        y = np.array(sheet["label"].map({c: i for i, c in enumerate(self.classes)}), dtype=np.int64)
        held_out = (sheet["fold"] == str(fold)).to_numpy()
        if not held_out.any():
            raise DeepselfError(f"{sheet_path}: fold {fold!r} has no samples")
        absent = sorted(set(self.classes) - set(sheet.loc[~held_out, "label"]))
        if absent:
            raise DeepselfError(f"{sheet_path}: fold {fold!r}: class {absent[0]!r} is absent from its training part")
        groups = sheet["group"].to_numpy() if "group" in sheet.columns and (sheet["group"] != "").all() else None
        pool = np.flatnonzero(~held_out)
        fit, dev = dev_split(y[pool], None if groups is None else groups[pool], spec["dev_fraction"], spec["cv_seed"])
        self.fit, self.dev, self.test = pool[fit], pool[dev], np.flatnonzero(held_out)
        self.ids = sheet["id"].to_numpy()
        with open_store(store_path) as store:
            x = store.read(list(sheet["id"]))
            self.meta = store.meta
        self.stats = normalizer(x[self.fit], spec["train"]["normalize"], self.meta["layout"])
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def to(self, device: torch.device) -> None:
        """Move the inputs to the GPU once when they fit comfortably, else pin them for fast copies."""
        if device.type != "cuda":
            return
        free, _ = torch.cuda.mem_get_info(device)
        if self.x.element_size() * self.x.nelement() < 0.5 * free:
            self.x, self.y = self.x.to(device), self.y.to(device)
        else:
            self.x, self.y = self.x.pin_memory(), self.y.pin_memory()


def build_optimizer(model: nn.Module, hp: dict) -> torch.optim.Optimizer:
    params = model.parameter_groups(hp["lr"]) if hasattr(model, "parameter_groups") else model.parameters()
    if hp["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], nesterov=hp["nesterov"],
                               weight_decay=hp["weight_decay"])
    kind = torch.optim.AdamW if hp["optimizer"] == "adamw" else torch.optim.Adam
    return kind(params, lr=hp["lr"], weight_decay=hp["weight_decay"])


def build_scheduler(optimizer, hp: dict):
    if hp["scheduler"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, hp["step_size"], hp["gamma"])
    if hp["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, hp["epochs"])
    if hp["scheduler"] == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "max", hp["gamma"], hp["plateau_patience"])
    return None


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, stats: dict, batch_size: int,
                  dtype: torch.dtype | None = None, memory_format=torch.contiguous_format) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(x), batch_size):
        xb = normalize(x[i : i + batch_size].to(device, non_blocking=True), stats)
        if xb.ndim == 4:
            xb = xb.contiguous(memory_format=memory_format)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out.append(torch.softmax(model(xb).float(), dim=1))
    return torch.cat(out).cpu() if out else torch.empty(0)


# Augmentations that change the inputs, which a probe never sees again after embedding them.
_INPUT_AUGMENT = ("specaugment", "shift", "gain_db", "flip", "crop_pad")


@torch.no_grad()
def probe(model: nn.Module, data: Fold, hp: dict, name: str, dtype: torch.dtype | None,
          memory_format=torch.contiguous_format) -> tuple[nn.Module, torch.Tensor]:
    """``train_mode: probe``: the head to train and the embeddings of every sample of the fold.

    The backbone runs once per sample, in eval mode, on the normalised inputs; the head (which
    shares its modules with ``model``) then trains on the embeddings, so the trained ``model``
    maps inputs to the same outputs as the head maps embeddings.
    """
    used = [key for key in _INPUT_AUGMENT if hp["augment"][key]]
    if used:
        raise DeepselfError(f"config key train.augment.{used[0]} (model {name}): train_mode probe trains on "
                            f"embeddings computed once, so input augmentation cannot apply (mixup can)")
    embedder, head = model.probe_split()
    embedder.eval()
    started = time.perf_counter()
    device = next(model.parameters()).device
    batch_size = hp["batch_size"] * 4
    parts = []
    for i in range(0, len(data.x), batch_size):
        xb = normalize(data.x[i : i + batch_size].to(device, non_blocking=True), data.stats)
        if xb.ndim == 4:
            xb = xb.contiguous(memory_format=memory_format)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            parts.append(embedder(xb).float().flatten(1))
    x = torch.cat(parts)
    log.info("probe: %d samples embedded once into %d values each in %.1fs", len(x), x.shape[1],
             time.perf_counter() - started)
    return head, x


def _fingerprint(spec: dict, fold: str, meta: dict, n: int) -> str:
    """Identity of a training run: a resume file of another run is never continued."""
    blob = json.dumps({"spec": spec, "fold": str(fold), "meta": meta, "n": n}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _rng_state(generators: dict[str, torch.Generator]) -> dict:
    state = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in generators.items()}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    for k, g in generators.items():
        g.set_state(state[k])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train_fold(sheet_path: str | os.PathLike, store_path: str | os.PathLike, fold: str, spec: dict,
               out_dir: str | os.PathLike, keep_resume: bool = False) -> dict:
    """Train ``spec`` on every fold but ``fold``, choose the epoch on a development split, predict ``fold``.

    Parameters
    ----------
    sheet_path
        ``samples.csv`` (ids, labels, folds, groups).
    store_path
        The store the model learns from (a feature map, or the raw/filtered signals or images).
    fold
        The held-out fold.
    spec
        ``{"name", "arch", "feature", "args", "train", "classes", "dev_fraction", "cv_seed"}``:
        the validated model config plus what the job needs of the experiment.
    out_dir
        Receives ``checkpoint.pt``, ``history.csv``, ``predictions.csv`` and ``summary.json``.
    keep_resume
        Keep ``resume.pt`` after the last epoch (a job training several folds in turn removes it
        with :func:`discard_resume` once all are done): started again, this fold then only predicts.

    Returns
    -------
    dict
        The summary: best epoch, its development UAR, the held-out UAR, sizes and time.

    Notes
    -----
    Every seed is set here, from ``spec`` alone, so folds trained in turn in one process give
    the outputs that one process per fold gives.
    """
    started = time.perf_counter()
    hp, out_dir = spec["train"], Path(out_dir)
    data = Fold(sheet_path, store_path, fold, spec)
    layout, n_classes = data.meta["layout"], len(data.classes)

    torch.manual_seed(hp["seed"])
    device = pick_device(hp["device"])
    dtype = autocast_dtype(hp["precision"], device)
    shape = tuple(data.x.shape[1:])
    model_args = {"n_chans": shape[0], "n_freqs": shape[1] if len(shape) == 3 else None,
                  "n_times": shape[-1], "n_outputs": n_classes, **spec["args"]}
    model = create_model(spec["arch"], **model_args)
    for layer, size in summary(model, shape):
        log.info("  %-48s -> %s", layer, size)
    memory_format = (torch.channels_last if device.type == "cuda" and hp["channels_last"] and len(shape) == 3
                     else torch.contiguous_format)
    model.to(device, memory_format=memory_format)
    data.to(device)
    # What trains, on what: the model on the inputs; or, for a probe, its head on embeddings.
    net, x_all, stats, aug_layout = model, data.x, data.stats, layout
    if getattr(model, "train_mode", None) == "probe":
        net, x_all = probe(model, data, hp, spec["name"], dtype, memory_format)
        stats, aug_layout = {"mode": "none"}, None
    optimizer = build_optimizer(net, hp)
    scheduler = build_scheduler(optimizer, hp)
    step = torch.compile(net) if hp["compile"] else net
    weight = None
    if hp["class_weights"]:
        counts = np.bincount(data.y[data.fit].cpu().numpy(), minlength=n_classes)
        weight = torch.tensor(len(data.fit) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    generators = {"order": torch.Generator().manual_seed(hp["seed"]),
                  "augment": torch.Generator().manual_seed(hp["seed"] + 1)}
    fit = torch.from_numpy(data.fit)
    y_dev = data.y[data.dev].cpu().numpy()

    resume_path = out_dir / "resume.pt"
    identity = _fingerprint(spec, fold, data.meta, len(data.ids))
    history, best, first_epoch, stale = [], {"dev_uar": -1.0, "epoch": 0}, 1, 0
    if resume_path.exists():
        state = torch.load(resume_path, map_location="cpu", weights_only=True)
        if state["identity"] == identity:
            net.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            _set_rng_state(state["rng"], generators)
            history, best, stale = state["history"], state["best"], state["stale"]
            first_epoch = state["epoch"] + 1
            log.info("resuming after epoch %d of %d (%s)", state["epoch"], hp["epochs"], resume_path)
        else:
            log.info("ignoring %s: it belongs to another run", resume_path)

    for epoch in range(first_epoch, hp["epochs"] + 1):
        if hp["patience"] and stale >= hp["patience"]:
            break
        t0 = time.perf_counter()
        net.train()
        order = fit[torch.randperm(len(fit), generator=generators["order"])]
        total = torch.zeros((), device=device)
        for i in range(0, len(order), hp["batch_size"]):
            batch = order[i : i + hp["batch_size"]]
            if len(batch) < 2 and len(order) > 1:
                continue  # a batch of one breaks batch norm and says little
            batch = batch.to(x_all.device)
            xb = normalize(x_all[batch].to(device, non_blocking=True), stats)
            xb = augment(xb, aug_layout, hp["augment"], generators["augment"])
            target = data.y[batch].to(device, non_blocking=True)
            if hp["augment"]["mixup"] > 0:
                xb, target = mixup(xb, nn.functional.one_hot(target, n_classes).float(), generators["augment"],
                                   hp["augment"]["mixup"])
            if xb.ndim == 4:
                xb = xb.contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = loss_fn(step(xb).float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if hp["grad_clip"]:
                nn.utils.clip_grad_norm_(net.parameters(), hp["grad_clip"])
            optimizer.step()
            total += loss.detach() * len(batch)
        p_dev = predict_proba(net, x_all[data.dev], stats, hp["batch_size"] * 4, dtype, memory_format)
        dev_uar = uar(y_dev, p_dev.argmax(1).numpy(), n_classes)
        dev_loss = float(nn.functional.nll_loss(torch.log(p_dev.clamp_min(1e-12)), torch.from_numpy(y_dev)))
        seconds = time.perf_counter() - t0
        lr = optimizer.param_groups[0]["lr"]
        history.append({"epoch": epoch, "train_loss": float(total) / len(fit), "dev_loss": dev_loss,
                        "dev_uar": dev_uar, "lr": lr, "seconds": seconds, "samples_per_s": len(fit) / seconds})
        log.info("epoch %3d/%d  loss %.4f  dev loss %.4f  dev UAR %.4f  lr %.2g  %.0f samples/s  %.2fs", epoch,
                 hp["epochs"], history[-1]["train_loss"], dev_loss, dev_uar, lr, len(fit) / seconds, seconds)
        if dev_uar > best["dev_uar"]:
            best = {"dev_uar": dev_uar, "epoch": epoch,
                    "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
            stale = 0
        else:
            stale += 1
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(dev_uar)
        elif scheduler is not None:
            scheduler.step()
        with atomic_path(resume_path) as tmp:
            torch.save({"identity": identity, "epoch": epoch, "model": net.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler is not None else None,
                        "rng": _rng_state(generators), "history": history, "best": best, "stale": stale}, tmp)

    net.load_state_dict(best["state_dict"])  # a probe's head shares its modules with the model
    proba = predict_proba(net, x_all[data.test], stats, hp["batch_size"] * 4, dtype, memory_format).numpy()
    y_test, pred = data.y[data.test].cpu().numpy(), proba.argmax(1)
    predictions = pd.DataFrame({"id": data.ids[data.test], "fold": str(fold),
                                "label": [data.classes[i] for i in y_test],
                                "pred": [data.classes[i] for i in pred]})
    for c, name in enumerate(data.classes):
        predictions[f"p_{name}"] = proba[:, c]
    result = {"model": spec["name"], "fold": str(fold), "best_epoch": best["epoch"], "dev_uar": best["dev_uar"],
              "test_uar": uar(y_test, pred, n_classes), "epochs_run": len(history), "n_train": len(data.fit),
              "n_dev": len(data.dev), "n_test": len(data.test), "device": str(device),
              "precision": "bf16" if dtype is not None else "fp32", "seconds": time.perf_counter() - started}
    checkpoint = {"model": spec["arch"], "model_args": model_args, "feature": spec["feature"],
                  "store_meta": data.meta, "classes": data.classes, "normalize": data.stats, "train": hp,
                  "fold": str(fold), "best_epoch": best["epoch"], "dev_uar": best["dev_uar"],
                  "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    with atomic_path(out_dir / "checkpoint.pt") as tmp:
        torch.save(checkpoint, tmp)
    with atomic_path(out_dir / "history.csv") as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    with atomic_path(out_dir / "predictions.csv") as tmp:
        predictions.to_csv(tmp, index=False)
    if not keep_resume:
        discard_resume(out_dir)
    log.info("fold %s: best epoch %d of %d, dev UAR %.4f, held-out UAR %.4f", fold, best["epoch"], len(history),
             best["dev_uar"], result["test_uar"])
    return result


def discard_resume(out_dir: str | os.PathLike) -> None:
    """Remove a fold's ``resume.pt`` (there is none after :func:`train_fold` but with ``keep_resume``)."""
    with contextlib.suppress(FileNotFoundError):
        (Path(out_dir) / "resume.pt").unlink()
