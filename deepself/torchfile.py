"""Reading a torch file: the one ``torch.load`` of checkpoints and weight files, tensors only.

:func:`deepself.inference.load_checkpoint` (a trained model) and
:func:`deepself.models.backbone.read_state_dict` (pretrained weights) both read through
:func:`load_tensors`, so both refuse code and say a foreign or broken file in one line.
"""

from __future__ import annotations

import os

import torch

from deepself.errors import DeepselfError, first_line


def load_tensors(path: str | os.PathLike, refusal: str) -> object:
    """What the torch file ``path`` holds, on the CPU, read with ``weights_only=True``.

    Raises
    ------
    DeepselfError
        ``refusal (why)`` when torch cannot read the file: not a torch file, truncated, or
        holding code, which ``weights_only`` refuses (torch raises pickle, zip and runtime errors
        alike, so every error is caught).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DeepselfError(f"{refusal} ({first_line(err)})") from None
