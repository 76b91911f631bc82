"""``import torchvision`` without importing ``torch._dynamo`` (about 2 s of a training job's start on two CPU cores).

torchvision 0.2x imports one name of torch._dynamo at its own import, ``is_compile_supported``
(``torchvision/ops/roi_align.py``), and calls it only inside ``roi_align``. While torchvision is
imported, a stand-in for ``torch._dynamo.utils`` gives that name as a function that imports the
real one on its first call; the stand-in is removed at once, so that ``torch.compile`` and any
later ``import torch._dynamo`` get the real package. A torchvision that asks for more of
torch._dynamo is imported the ordinary way.
"""

from __future__ import annotations

import sys
import types


def _is_compile_supported(device_type):
    from torch._dynamo.utils import is_compile_supported

    return is_compile_supported(device_type)


def import_torchvision():
    """The torchvision module, imported (once) without torch._dynamo where torchvision allows it."""
    if "torchvision" in sys.modules or "torch._dynamo" in sys.modules:
        import torchvision

        return torchvision
    import torch

    package = types.ModuleType("torch._dynamo")
    package.__path__ = []
    utils = types.ModuleType("torch._dynamo.utils")
    utils.is_compile_supported = _is_compile_supported
    package.utils = utils
    sys.modules.update({"torch._dynamo": package, "torch._dynamo.utils": utils})
    try:
        import torchvision
    except ImportError:
        _remove(package, utils, torch)
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]  # half imported against the stand-in
        import torchvision
    finally:
        _remove(package, utils, torch)
    return torchvision


def _remove(package, utils, torch) -> None:
    for name, module in (("torch._dynamo.utils", utils), ("torch._dynamo", package)):
        if sys.modules.get(name) is module:
            del sys.modules[name]
    if torch.__dict__.get("_dynamo") is package:
        del torch._dynamo  # torch imports its _dynamo lazily on first use again
