"""Each stage job imports what it uses: a job's start-up is its imports (benchmarks/train_startup.py times them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys

def loaded(*names):
    return sorted(n for n in names if n in sys.modules)

out = {}
# the commands of the sheet, ingest, fuse and report jobs, before they read anything
import deepself.cli, deepself.io.sheet, deepself.io.ingest, deepself.scoring.fusion, deepself.scoring.report
out["csv jobs"] = loaded("torch", "librosa", "scipy", "matplotlib", "soundfile", "h5py", "sklearn")

# a log-Mel map: torch, and neither librosa nor scipy (the Mel matrix and the Hann window are numpy)
import numpy as np
from deepself.signal import features
from deepself.signal.params import check_params
x = np.random.default_rng(0).standard_normal((2, 1, 8000)).astype(np.float32)
features.compute("logmel", x, 8000.0, check_params("logmel", {"n_fft": 512}, 8000.0, 8000, "k"))
out["logmel"] = loaded("librosa", "scipy")

# a torchvision model without torch._dynamo; torch still imports the real one on first use (torch.compile)
import torch
from deepself.models import create_model
net = create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=3, name="resnet18", weights=None)
out["resnet18"] = list(net(torch.zeros(2, 1, 32, 32)).shape)
out["dynamo"] = loaded("torch._dynamo") + sorted(k for k in ("_dynamo",) if k in vars(torch))
print(json.dumps(out))
"""


def test_each_job_imports_what_it_uses():
    result = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["csv jobs"] == []
    assert out["logmel"] == []
    assert out["resnet18"] == [2, 3] and out["dynamo"] == []
