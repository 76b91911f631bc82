import json
import os
import sys

from snakemake.exceptions import WorkflowError

from deepself.config import validate_config
from deepself.errors import DeepselfError
from deepself.io.sheet import fold_names

try:
    C = validate_config(config)
    FOLDS = fold_names(C["data"], C["cv"])
except DeepselfError as err:
    raise WorkflowError(f"deepself: error: {err}") from None

R = f"{C['results']}/{C['experiment']}"
# The Python that runs snakemake has deepself (common.smk imports it), so the rules call that one.
DEEPSELF = f"{sys.executable} -m deepself"
MODALITIES = list(C["data"]["modalities"])
MAPS = [f for f, spec in C["features"].items() if spec["kind"] not in ("raw", "image")]
MODELS = list(C["models"])
FUSIONS = list(C["fusions"])
SYSTEMS = MODELS + FUSIONS


wildcard_constraints:
    modality="|".join(MODALITIES) or "^$",
    feature="|".join(MAPS) or "^$",
    model="|".join(MODELS),
    fusion="|".join(FUSIONS) or "^$",
    fold="|".join(FOLDS),


def as_json(value):
    return json.dumps(value, sort_keys=True)


def signal_store(modality):
    """The modality's signals as the features see them: band-passed when a filter is set."""
    stage = "filtered" if C["data"]["modalities"][modality]["filter"] else "raw"
    return f"{R}/{stage}/{modality}.h5"


def model_input(model):
    """The store a model learns from: a feature map, or the (filtered) signals, or the images."""
    feature = C["features"][C["models"][model]["feature"]]
    if feature["kind"] == "image":
        return f"{R}/raw/{feature['modality']}.h5"
    if feature["kind"] == "raw":
        return signal_store(feature["modality"])
    return f"{R}/features/{C['models'][model]['feature']}.h5"


def predictions(system, folds=FOLDS):
    stage = "models" if system in C["models"] else "fusions"
    return [f"{R}/{stage}/{system}/fold{fold}/predictions.csv" for fold in folds]


def report_files():
    names = ["summary.csv", "uar_per_fold.csv", "per_class.csv", "uar.png", "curves.png", "report.md"]
    return [f"{R}/report/{n}" for n in names] + [f"{R}/report/confusion_{s}.png" for s in SYSTEMS]


def get_final_output():
    return report_files()
