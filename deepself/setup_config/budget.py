"""What a plan of models costs on a CPU, and how ``--budget`` shrinks it.

A simple cost model, scaled by recordings x length x folds, so that it can be checked against a
run (``benchmarks/init_eval.py`` prints both):

- a rocket's training job (all folds in one job): a start-up, plus its transform over every
  recording once per held-out fold, at a cost per signal value and 10,000 kernels taken from the
  job times ``benchmarks/tsc_parity.py`` printed (benchmarks/README.md: MiniRocket 7.6 s on
  ItalyPowerDemand's 1,096 x 24 values, 9.7 s on OSULeaf's 442 x 427; MultiRocket 10.2 and 20.6 s),
  with aeon's numba functions already compiled (a first job in a new environment compiles them:
  about 20 s more), plus the ridge's leave-one-out (n_train² x features);
- a network: a job per held-out fold (``train.folds_per_job: auto`` on a CPU), each a start-up plus
  ``epochs`` x (a training step per fit recording + a forward pass per development recording),
  then one forward pass over the held-out ones. Seconds per recording are measured at init on
  this machine (a few batches of the model at its input's shape, one thread, as a training job
  runs) or, with ``timing="stored"``, taken from :data:`STORED_S_PER_VALUE`;
- a probe: one job that embeds every recording once (a forward pass each) and fits a head per fold;
- the rest of the workflow (Snakemake's start, sheet, ingest, features, fusions, report):
  :data:`WORKFLOW_S` plus a fusion job per fold.

The wall time on ``cores`` cores is the longest-first schedule of the jobs on them, plus the rest.
The stored figures come from the 2-core development VM with nothing else running; when networks
are timed here, a LITE step is timed too and its ratio to the stored one (:func:`slowdown`) scales
them, so that a slower or busier machine is not promised that VM's times.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

ROCKET_START_S = {"minirocket": 7.3, "multirocket": 8.5, "hydra": 7.3}
# per signal value, 10,000 kernels (Hydra: its default 8 x 64 kernels a dilation, timed beside MiniRocket
# in one process on OSULeaf's 200 x 427 training part: 5.7x MiniRocket's torch transform)
ROCKET_S_PER_VALUE = {"minirocket": 1.3e-5, "multirocket": 6.4e-5, "hydra": 7.4e-5}
ROCKET_FEATURES_PER_KERNEL = {"minirocket": 1, "multirocket": 8, "hydra": 0.6}  # Hydra: 6,144 on 427 samples
RIDGE_S_PER_FLOP = 1.5e-10  # the leave-one-out ridge: n_train² x features multiply-adds, one core
JOB_START_S = 6.5  # a training job outside its epochs (imports, reading the store; benchmarks/README.md)
PROBE_HEAD_S = 1.0  # a probe's logistic regression per fold, C by cross-validation
WORKFLOW_S = 15.0  # snakemake's start, sheet, ingest, features and report (tsc_parity's runs)
FUSE_JOB_S = 2.5  # one fusion of one fold
# Seconds of a training step per input value (channels x length, or x height x width), one thread.
# lite's is benchmarks/README.md's (0.527 s an epoch of 200 x 427); the others were timed with
# `measure_seconds` beside lite on the 2-core VM while it was busy (lite then took 1.83e-5), and
# scaled by lite's ratio: cnn1d on 427 samples, cnn2d on 64 x 216 maps (5.9e-7) and 8 x 8 images
# (2.6e-6), fnn on 8 x 8, panns (Cnn10) on 96 x 216, yamnet on 64 x 498, mobilenet_v2 on 48 x 48
# resized to 96 (per value of the resized input). A forward pass is taken as a third of a step
# (`EVAL_SHARE`).
STORED_S_PER_VALUE = {"lite": 6.2e-6, "cnn1d": 3.2e-6, "cnn2d": 1.5e-6, "fnn": 4.5e-7, "panns": 2.1e-5,
                      "yamnet": 3.9e-6, "torchvision": 9e-7}
EVAL_SHARE = 1 / 3
MIN_EPOCHS, MIN_KERNELS = 10, 1000


@dataclass
class Folds:
    """How the recordings are split: ``held_out`` folds, each training on ``train_share`` of them."""

    n: int
    held_out: int
    train_share: float
    dev_fraction: float
    cores: int = 1
    slowdown: float = 1.0  # this machine's time for the stored figures' work, over theirs (`slowdown`)


@dataclass
class ModelPlan:
    """A model of the plan: its config entry, why it is there, and what its cost depends on."""

    name: str
    spec: dict
    why: list[str]
    family: str  # rocket, network or probe
    shape: tuple[int, ...]  # one input (a window's, with windows): (C, T) or (C, F, T)
    views: tuple[float, float] = (1.0, 1.0)  # windows per recording: in training, in evaluation
    seconds: tuple[float, float] | None = None  # per input: a training step, a forward pass
    timing: str = "stored"
    changes: list[str] = field(default_factory=list)

    @property
    def jobs(self) -> int:
        return 1 if self.family in ("rocket", "probe") else 0  # networks: a job per held-out fold


def values(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def stored_seconds(plan: ModelPlan) -> tuple[float, float]:
    resize = plan.spec.get("args", {}).get("resize")  # a network that resizes works at that size
    shape = (plan.shape[0], *resize) if resize else plan.shape
    step = STORED_S_PER_VALUE.get(plan.spec["arch"], 2e-6) * values(shape)
    return step, step * EVAL_SHARE


def measure_seconds(plan: ModelPlan, n_classes: int, batch: int | None = None) -> tuple[float, float]:
    """Seconds per input of a training step and of a forward pass, timed here on random inputs.

    One thread (as a training job runs), the model at its input's shape with random weights (the
    same cost as pretrained ones), batches of the model's ``train.batch_size`` (16 for a probe, at
    most 64); the median of three batches after a warm-up one.
    """
    import torch

    from deepself.models import create_model

    batch = batch or min(64, plan.spec.get("train", {}).get("batch_size", 16))
    torch.set_num_threads(1)
    args = {k: v for k, v in plan.spec.get("args", {}).items() if k not in ("weights", "train_mode")}
    c, *rest = plan.shape
    model = create_model(plan.spec["arch"], n_chans=c, n_freqs=rest[0] if len(rest) == 2 else None,
                         n_times=rest[-1], n_outputs=n_classes, **args)
    x, y = torch.randn(batch, *plan.shape), torch.randint(0, n_classes, (batch,))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        optimiser.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()

    def forward():
        with torch.no_grad():
            model(x)

    model.train()
    train = _median_time(step) if plan.family == "network" else 0.0
    model.eval()
    return train / batch, _median_time(forward) / batch


def slowdown() -> float:
    """How much slower than the stored figures this machine is now: a LITE step on OSULeaf's shape, timed.

    The ratio of its time to :data:`STORED_S_PER_VALUE`'s (benchmarks/README.md), between 0.25 and
    8; it scales the stored figures (rockets, job start-ups, the workflow's other stages), so that
    a slower or busier machine is not promised the development VM's times (the timing itself:
    about a second).
    """
    plan = ModelPlan("lite", {"arch": "lite"}, [], "network", (1, 427))
    step, _ = measure_seconds(plan, 6, batch=64)
    return min(8.0, max(0.25, step / (STORED_S_PER_VALUE["lite"] * 427)))


def _median_time(run, repeats: int = 3) -> float:
    start = time.perf_counter()
    run()  # warm-up
    if time.perf_counter() - start > 5:  # a slow model: the warm-up is the measure
        return time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def job_seconds(plan: ModelPlan, folds: Folds) -> list[float]:
    """Seconds of each training job of the model."""
    n_train = folds.n * folds.train_share
    if plan.family == "rocket":
        arch, kernels = plan.spec["arch"], plan.spec["args"].get("n_kernels", 10000)  # Hydra's: fixed
        length = plan.shape[-1] * max(plan.views)
        transform = folds.held_out * folds.n * length * ROCKET_S_PER_VALUE[arch] * kernels / 10000
        features = kernels * ROCKET_FEATURES_PER_KERNEL[arch]
        ridge = folds.held_out * (n_train * plan.views[0]) ** 2 * features * RIDGE_S_PER_FLOP
        return [folds.slowdown * (ROCKET_START_S[arch] + transform + ridge)]
    step, forward = plan.seconds
    if plan.family == "probe":  # normalised inputs differ per fold: each fold embeds them again
        passes = 1 if plan.spec.get("train", {}).get("normalize") == "none" else folds.held_out
        embed = passes * folds.n * plan.views[1] * forward
        return [folds.slowdown * (JOB_START_S + folds.held_out * PROBE_HEAD_S) + embed]
    n_dev = n_train * folds.dev_fraction
    epoch = (n_train - n_dev) * plan.views[0] * step + n_dev * plan.views[1] * forward
    last = (folds.n - n_train) * plan.views[1] * forward
    return [folds.slowdown * JOB_START_S + plan.spec["train"]["epochs"] * epoch + last] * folds.held_out


def wall_seconds(plans: list[ModelPlan], folds: Folds, fusions: int) -> float:
    """The workflow's wall time: the jobs scheduled longest first on ``folds.cores`` cores, plus the rest."""
    cores = [0.0] * max(1, folds.cores)
    for job in sorted((s for p in plans for s in job_seconds(p, folds)), reverse=True):
        cores[cores.index(min(cores))] += job
    fuse = fusions * folds.held_out * FUSE_JOB_S / len(cores)
    return folds.slowdown * (WORKFLOW_S + fuse) + max(cores)


def fit_budget(plans: list[ModelPlan], folds: Folds, budget_s: float) -> tuple[list[ModelPlan], list[str]]:
    """Shrink the costliest model (fewer epochs, fewer kernels) or drop it until the plan fits ``budget_s``.

    A network's epochs halve down to :data:`MIN_EPOCHS`, a rocket's kernels down to
    :data:`MIN_KERNELS`; a model that cannot shrink further is dropped, unless it is the last.
    Each change is noted in the model's ``changes`` (its comment in the config).

    Returns
    -------
    The models kept, and a line for each model left out.
    """
    plans, dropped = list(plans), []
    while (estimate := wall_seconds(plans, folds, int(len(plans) > 1))) > budget_s:
        costliest = max(plans, key=lambda p: sum(job_seconds(p, folds)))
        why = f"the plan's estimate, {estimate:.0f} s, was over the budget of {budget_s:.0f} s"
        if _shrink(costliest, why):
            continue
        if len(plans) == 1:
            costliest.changes.append(f"over budget: {why}, and this is the smallest plan")
            break
        plans.remove(costliest)
        dropped.append(f"budget: {costliest.name} left out ({why})")
    return plans, dropped


def _shrinkable(plan: ModelPlan) -> bool:
    if plan.family == "network":
        return plan.spec["train"]["epochs"] > MIN_EPOCHS
    return plan.family == "rocket" and plan.spec["args"].get("n_kernels", 0) > MIN_KERNELS


def _shrink(plan: ModelPlan, why: str) -> bool:
    """Halve the plan's epochs or kernels; False when it is at its floor."""
    if not _shrinkable(plan):
        return False
    key, box = ("epochs", plan.spec["train"]) if plan.family == "network" else ("n_kernels", plan.spec["args"])
    floor = MIN_EPOCHS if key == "epochs" else MIN_KERNELS
    old, box[key] = box[key], max(floor, box[key] // 2)
    plan.changes.append(f"budget: {key} {old:,} -> {box[key]:,} ({why})")
    return True
