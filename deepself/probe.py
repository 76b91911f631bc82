"""``train_mode: probe``: a pretrained network's frozen backbone embeds every sample once, its head trains.

The backbone runs once per sample, in eval mode, on the normalised inputs; the head (which shares
its modules with the model) then trains on the embeddings, so the trained model maps inputs to the
same outputs as the head maps embeddings, and the checkpoint holds the whole network.
"""

from __future__ import annotations

import logging
import time

import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.inference import Forward

log = logging.getLogger(__name__)

# Augmentations that change the inputs, which a probe never sees again after embedding them.
INPUT_AUGMENT = ("specaugment", "shift", "gain_db", "flip", "crop_pad")


def check_augment(hp: dict, name: str) -> None:
    """Refuse input augmentation for a probe, naming the key (mixup mixes embeddings, so it can apply)."""
    used = [key for key in INPUT_AUGMENT if hp["augment"][key]]
    if used:
        raise DeepselfError(f"config key train.augment.{used[0]} (model {name}): train_mode probe trains on "
                            f"embeddings computed once, so input augmentation cannot apply (mixup can)")


@torch.no_grad()
def embed(model: nn.Module, x: torch.Tensor, forward: Forward, batch_size: int) -> tuple[nn.Module, torch.Tensor]:
    """The head to train and the embeddings of every sample of ``x`` (float32, on the forward's device)."""
    embedder, head = model.probe_split()
    embedder.eval()
    started = time.perf_counter()
    parts = []
    for i in range(0, len(x), batch_size):
        with forward.autocast():
            parts.append(embedder(forward.inputs(x[i : i + batch_size])).float().flatten(1))
    embeddings = torch.cat(parts)
    log.info("probe: %d samples embedded once into %d values each in %.1fs", len(embeddings), embeddings.shape[1],
             time.perf_counter() - started)
    return head, embeddings
