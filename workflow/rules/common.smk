import atexit
import json
import os
import re
import sys

from snakemake.exceptions import WorkflowError

from deepself.config import fits_a_head, training_folds_per_job, training_gpu_units, validate_config
from deepself.errors import DeepselfError
from deepself.io.filehash import cache_path
from deepself.io.lock import RunLock
from deepself.io.preflight import preflight

envvars:
    "PATH",


# The environment that runs snakemake has deepself (this file imports it): put its scripts first
# on the PATH of the jobs, so that `deepself` is found even when that environment is not activated.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])

try:
    C = validate_config(config)
    # The samples are checked before any job, and their files' contents hashed (cached by stat, see
    # deepself.io.preflight.preflight): ingest reruns when one of them changes.
    PLAN = preflight(C["data"], C["cv"], hash_cache=cache_path(C["results"]))
    FOLDS = PLAN.folds
except DeepselfError as err:
    raise WorkflowError(f"deepself: error: {err}") from None

R = f"{C['results']}/{C['experiment']}"

# One run at a time writes into R: Snakemake's own lock covers only its working directory, so two
# runs with different --directory would overwrite each other's files (deepself.io.lock). Taken
# when jobs are about to start (not for a dry run), freed when the run ends, however it ends.
LOCK = RunLock(R)


onstart:
    try:
        LOCK.acquire()
    except DeepselfError as err:
        raise WorkflowError(f"deepself: error: {err}") from None
    atexit.register(LOCK.release)


onsuccess:
    LOCK.release()


onerror:
    LOCK.release()


MODALITIES = list(C["data"]["modalities"])
MAPS = [f for f, spec in C["features"].items() if spec["kind"] not in ("raw", "image")]
MODELS = list(C["models"])
FUSIONS = list(C["fusions"])
SYSTEMS = MODELS + FUSIONS


def one_of(names):
    """A wildcard constraint matching exactly these names (none: matching nothing)."""
    return "|".join(map(re.escape, names)) or "(?!)"


wildcard_constraints:
    modality=one_of(MODALITIES),
    feature=one_of(MAPS),
    model=one_of(MODELS),
    fusion=one_of(FUSIONS),
    fold=one_of(FOLDS),


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
    names = ["summary.csv", "uar_per_fold.csv", "per_class.csv", "comparisons.csv", "uar.png", "uar_ci.png",
             "curves.png", "report.md"]
    return [f"{R}/report/{n}" for n in names] + [f"{R}/report/confusion_{s}.png" for s in SYSTEMS]


def train_spec(model):
    spec = C["models"][model]
    # These only schedule jobs and their resume writes: outside the spec, a fold's resume state,
    # checkpoint and params are the same however its job is scheduled.
    scheduling = ("folds_per_job", "threads", "gpu", "resume_every_s")
    train = {k: v for k, v in spec["train"].items() if k not in scheduling}
    return as_json(
        {
            "name": model,
            **spec,
            "train": train,
            "classes": C["data"]["classes"],
            "dev_fraction": C["cv"]["dev_fraction"],
            "cv_seed": C["cv"]["seed"],
        }
    )


def train_threads(wildcards):
    return C["models"][wildcards.model]["train"]["threads"]


def train_gpu(wildcards):
    return training_gpu_units(C["models"][wildcards.model]["train"])


def resume_every_s(wildcards):
    return C["models"][wildcards.model]["train"]["resume_every_s"]


def folds_per_job(model):
    return training_folds_per_job(C["models"][model]["train"], fits_a_head(C["models"][model]))


def fold_groups(model):
    """The model's folds in the groups that one training job trains in turn (train.folds_per_job)."""
    k = folds_per_job(model)
    return [tuple(FOLDS[i : i + k]) for i in range(0, len(FOLDS), k)]


def fusion_files(fusion, fold, name):
    """The file ``name`` of each model of the fusion, in the fold."""
    return [f"{R}/models/{m}/fold{fold}/{name}" for m in C["fusions"][fusion]["models"]]


def fuse_options(fusion):
    """The fuse command's options beyond --method: --top, and select's --rounds."""
    spec = C["fusions"][fusion]
    options = f" --top {spec['top']}" if spec.get("top") else ""
    if spec["method"] == "select":
        options += f" --rounds {spec['rounds']}"
    return options


def report_systems():
    systems = {}
    for model in MODELS:
        systems[model] = {
            "kind": "model",
            "predictions": predictions(model),
            "histories": [f"{R}/models/{model}/fold{f}/history.csv" for f in FOLDS],
        }
    for fusion in FUSIONS:
        systems[fusion] = {
            "kind": "fusion",
            "predictions": predictions(fusion),
            "models": C["fusions"][fusion]["models"],
        }
    return systems


def model_outputs(model):
    """Every file a model's training writes: predict and export need the checkpoints, fusions and the report the rest."""
    names = ["predictions.csv", "dev_predictions.csv", "summary.json", "history.csv", "checkpoint.pt"]
    return [f"{R}/models/{model}/fold{f}/{n}" for f in FOLDS for n in names]


def get_final_output():
    # Every output of the DAG that a later command reads, not only the report's inputs: Snakemake
    # remakes a missing file only when something asks for it, and a report that is up to date asks
    # for nothing (a deleted checkpoint.pt, or the outputs of a job that failed, would stay missing).
    fused = [f"{R}/fusions/{s}/fold{f}/{n}" for s in FUSIONS for f in FOLDS for n in ("predictions.csv", "weights.json")]
    return report_files() + [p for m in MODELS for p in model_outputs(m)] + fused
