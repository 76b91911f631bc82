"""Train one model on one cross-validation fold, keep the epoch with the best development UAR, predict.

The fold's held-out samples are never seen until the kept model predicts them: the development
split that chooses the epoch and the normalisation statistics both come from the training folds.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit
from torch import nn

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


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, stats: dict, batch_size: int) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    out = [torch.softmax(model(normalize(x[i : i + batch_size].to(device), stats)).float(), dim=1).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def train_fold(sheet_path: str | os.PathLike, store_path: str | os.PathLike, fold: str, spec: dict,
               out_dir: str | os.PathLike) -> dict:
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

    Returns
    -------
    dict
        The summary: best epoch, its development UAR, the held-out UAR, sizes and time.
    """
    started = time.perf_counter()
    hp = spec["train"]
    sheet = read_sheet(sheet_path)
    classes = spec["classes"] or sorted(sheet["label"].unique())
    y = np.array(sheet["label"].map({c: i for i, c in enumerate(classes)}), dtype=np.int64)
    held_out = (sheet["fold"] == str(fold)).to_numpy()
    if not held_out.any():
        raise DeepselfError(f"{sheet_path}: fold {fold!r} has no samples")
    groups = sheet["group"].to_numpy() if "group" in sheet.columns and (sheet["group"] != "").all() else None
    pool = np.flatnonzero(~held_out)
    fit, dev = (pool[i] for i in dev_split(y[pool], None if groups is None else groups[pool],
                                           spec["dev_fraction"], spec["cv_seed"]))
    test = np.flatnonzero(held_out)

    with open_store(store_path) as store:
        x_all = store.read(list(sheet["id"]))
        meta = store.meta
    stats = normalizer(x_all[fit], hp["normalize"], meta["layout"])
    x_all = torch.from_numpy(x_all)
    y_all = torch.from_numpy(y)

    torch.manual_seed(hp["seed"])
    device = pick_device(hp["device"])
    shape = x_all.shape[1:]
    model_args = {"n_chans": shape[0], "n_freqs": shape[1] if len(shape) == 3 else None,
                  "n_times": shape[-1], "n_outputs": len(classes), **spec["args"]}
    model = create_model(spec["arch"], **model_args)
    for layer, size in summary(model, tuple(shape)):
        log.info("  %-40s -> %s", layer, size)
    model.to(device)
    optimizer = (torch.optim.Adam(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
                 if hp["optimizer"] == "adam" else
                 torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=hp["momentum"],
                                 weight_decay=hp["weight_decay"]))
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(hp["seed"])
    x_fit, y_fit = x_all[fit], y_all[fit]
    x_dev, y_dev = x_all[dev], y_all[dev]

    history, best = [], {"dev_uar": -1.0}
    for epoch in range(1, hp["epochs"] + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(fit), generator=generator)
        total = 0.0
        for i in range(0, len(order), hp["batch_size"]):
            batch = order[i : i + hp["batch_size"]]
            if len(batch) < 2 and len(order) > 1:
                continue  # a batch of one breaks batch norm and says little
            xb = normalize(x_fit[batch].to(device, non_blocking=True), stats)
            loss = loss_fn(model(xb), y_fit[batch].to(device, non_blocking=True))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(batch)
        p_dev = predict_proba(model, x_dev, stats, hp["batch_size"] * 4)
        dev_loss = float(nn.functional.nll_loss(torch.log(p_dev.clamp_min(1e-12)), y_dev))
        dev_uar = uar(y_dev.numpy(), p_dev.argmax(1).numpy(), len(classes))
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch, "train_loss": float(total) / len(fit), "dev_loss": dev_loss,
                        "dev_uar": dev_uar, "seconds": seconds, "samples_per_s": len(fit) / seconds})
        log.info("epoch %3d/%d  loss %.4f  dev loss %.4f  dev UAR %.4f  %.0f samples/s  %.2fs", epoch,
                 hp["epochs"], history[-1]["train_loss"], dev_loss, dev_uar, len(fit) / seconds, seconds)
        if dev_uar > best["dev_uar"]:
            best = {"dev_uar": dev_uar, "epoch": epoch,
                    "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}

    model.load_state_dict(best["state_dict"])
    proba = predict_proba(model, x_all[test], stats, hp["batch_size"] * 4).numpy()
    pred = proba.argmax(1)
    predictions = pd.DataFrame({"id": sheet["id"].to_numpy()[test], "fold": str(fold),
                                "label": [classes[i] for i in y[test]], "pred": [classes[i] for i in pred]})
    for c, name in enumerate(classes):
        predictions[f"p_{name}"] = proba[:, c]
    result = {"model": spec["name"], "fold": str(fold), "best_epoch": best["epoch"], "dev_uar": best["dev_uar"],
              "test_uar": uar(y[test], pred, len(classes)), "n_train": len(fit), "n_dev": len(dev),
              "n_test": len(test), "device": str(device), "seconds": time.perf_counter() - started}
    checkpoint = {"model": spec["arch"], "model_args": model_args, "feature": spec["feature"],
                  "store_meta": meta, "classes": classes, "normalize": stats, "train": hp,
                  "fold": str(fold), "best_epoch": best["epoch"], "dev_uar": best["dev_uar"],
                  "state_dict": best["state_dict"]}

    out_dir = Path(out_dir)
    with atomic_path(out_dir / "checkpoint.pt") as tmp:
        torch.save(checkpoint, tmp)
    with atomic_path(out_dir / "history.csv") as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    with atomic_path(out_dir / "predictions.csv") as tmp:
        predictions.to_csv(tmp, index=False)
    log.info("fold %s: best epoch %d, dev UAR %.4f, held-out UAR %.4f", fold, best["epoch"],
             best["dev_uar"], result["test_uar"])
    return result
