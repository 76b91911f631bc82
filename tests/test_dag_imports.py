"""What snakemake imports while it parses the workflow: no torch, librosa, scipy, matplotlib, torchvision, numba, h5py.

A no-op `snakemake` or a dry run pays every import of the config checks and of common.smk (deepself
benchmarks: `snakemake --cores all` with nothing to do in about 1.5 s); the heavy libraries belong
to the jobs that use them. Checked in a fresh interpreter, as snakemake starts one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "librosa", "scipy", "matplotlib", "torchvision", "numba", "h5py")

# Everything common.smk runs while snakemake parses the workflow: its imports, validate_config of
# every shipped config, the scheduling helpers, and the checks of the samples (preflight) of the
# demo config, whose data ships with aeon (the others need downloads).
CHILD = r"""
import json, os, sys, tempfile
from pathlib import Path

import yaml

from deepself.config import fits_a_head, training_folds_per_job, training_gpu_units, validate_config
from deepself.errors import DeepselfError
from deepself.io.filehash import cache_path
from deepself.io.lock import RunLock
from deepself.io.preflight import preflight

checked = []
for path in sorted(Path("config").glob("*.yaml")):
    config = validate_config(yaml.safe_load(path.read_text()))
    for model in config["models"].values():
        training_folds_per_job(model["train"], fits_a_head(model))
        training_gpu_units(model["train"])
    if path.name == "config.yaml":
        with tempfile.TemporaryDirectory() as tmp:
            plan = preflight(config["data"], config["cv"], hash_cache=cache_path(tmp))
            assert plan.folds, "the demo's folds"
            RunLock(os.path.join(tmp, "experiment"))
    checked.append(path.name)
print(json.dumps({"checked": checked, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)}))
"""


def test_parsing_the_workflow_imports_no_heavy_library():
    out = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{CHILD}"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "config.yaml" in result["checked"] and len(result["checked"]) == len(list((REPO / "config").glob("*.yaml")))
    assert result["loaded"] == [], f"imported while the workflow is parsed: {result['loaded'][:10]}"
