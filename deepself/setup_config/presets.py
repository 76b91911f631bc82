"""The choices of ``deepself init`` that do not depend on the kind of data, and those for sensor/EEG signals.

Each choice comes with the sentence that explains it: a :class:`Part` holds config entries and,
by key path, the comment lines written above them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from deepself.errors import DeepselfError
from deepself.setup_config.budget import Folds, ModelPlan
from deepself.setup_config.survey import ModalitySurvey, Survey

PRESETS = ("fast", "good", "best")
DEV_FRACTION = 0.2
MAX_FOLDS = 5
# Windows for lite when recordings are longer than this many samples: 512 samples each (Bonn's
# windows, config/bonn.yaml); for the rockets from this many, 4,096 samples each.
NETWORK_LONG, NETWORK_WINDOW = 2048, 512
ROCKET_LONG, ROCKET_WINDOW = 16384, 4096
LENGTH_SPREAD = 4.0  # as deepself.io.preflight: a longest over 4x the median is cut to the median
TSC = "the five sets of benchmarks/tsc_parity.py (benchmarks/README.md)"


@dataclass
class Part:
    """Config entries (``modalities``, ``features``, model plans) and comments by key path."""

    modalities: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)
    plans: list[ModelPlan] = field(default_factory=list)
    notes: dict[tuple, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def note(self, path: tuple, *lines: str) -> None:
        self.notes.setdefault(path, []).extend(lines)


def number(x: float) -> str:
    """4,097 / 173.61 / 0.5: thousands separated, at most 5 significant digits."""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.5g}"


def seconds(x: float) -> str:
    return f"{x:,.0f} s" if x >= 100 else f"{x:.3g} s"


def lengths_text(m: ModalitySurvey, rate: float, unit: str = "recordings") -> str:
    """'recordings are 23.6 s, 4,097 samples at 173.61 Hz' (or their range and median)."""
    lo, hi, med = int(m.lengths.min()), int(m.lengths.max()), m.median_length
    if lo == hi:
        return f"{unit} are {seconds(lo / rate)}, {number(lo)} samples at {number(rate)} Hz"
    return (f"{unit} are {seconds(lo / rate)} to {seconds(hi / rate)}, median {seconds(med / rate)} "
            f"({number(lo)} to {number(hi)} samples at {number(rate)} Hz)")


def plan_cv(survey: Survey) -> tuple[dict, list[str], Folds]:
    """``cv`` from the sheet: its official split or its folds, else (grouped) stratified k folds."""
    n, counts = survey.n, survey.classes
    cv = {"folds": 5, "seed": 0, "dev_fraction": DEV_FRACTION}
    if survey.test_fold is not None:
        test = survey.test_fold
        train = survey.n - survey.folds[test]
        cv.update(folds="from_sheet", test_folds=[test])
        why = [f"the sheet's official split: train on fold {next(f for f in survey.folds if f != test)!r} "
               f"({number(train)} samples), score fold {test!r} ({number(survey.folds[test])})"]
        return cv, why, Folds(n, 1, train / n, DEV_FRACTION)
    if survey.folds is not None:
        k = len(survey.folds)
        if k < 2:
            raise DeepselfError(f"{survey.sheet}: every sample is in fold {next(iter(survey.folds))!r}; give the fold "
                                "column two folds or more, or remove it to have folds assigned")
        cv["folds"] = "from_sheet"
        return cv, [f"the sheet's {k} folds ({', '.join(survey.folds)}), each held out in turn"], \
            Folds(n, k, 1 - 1 / k, DEV_FRACTION)
    k = _k_folds(survey)
    cv["folds"] = k
    why = f"{k} stratified folds"
    if survey.groups is not None:
        k = cv["folds"] = min(k, survey.groups)
        why = f"{k} stratified folds grouped by the sheet's group column ({number(survey.groups)} groups)"
    smallest = min(counts, key=counts.get)
    why += f": the smallest class, {smallest!r}, has {counts[smallest]} samples"
    later = ("the sheet's fold column has empty cells, so it is not used" if survey.fold_gaps
             else "(with a fold column naming train and test, init would use that split)")
    return cv, [why, later], Folds(n, k, 1 - 1 / k, DEV_FRACTION)


def _k_folds(survey: Survey) -> int:
    """The most folds up to 5 that leave every class one sample per fold and two in a development split."""
    smallest = min(survey.classes.values())
    for k in range(MAX_FOLDS, 1, -1):
        if smallest >= k and smallest - math.ceil(smallest / k) >= 2:
            return k
    name = min(survey.classes, key=survey.classes.get)
    raise DeepselfError(f"{survey.sheet}: class {name!r} has {smallest} samples; cross-validation needs at least 3 "
                        f"of each class (one to hold out, two for the development split): add samples of {name!r} "
                        "or merge it into another class")


def suffix(m: ModalitySurvey, survey: Survey) -> str:
    """Model and feature names carry the modality's name when there are several."""
    return "" if len(survey.modalities) == 1 else f"_{m.name}"


def sensor_part(m: ModalitySurvey, survey: Survey, preset: str, sample_rate: float | None) -> Part:
    """Sensor/EEG: the two rockets on the raw signal, and LITE (good, best), windows when long."""
    part = Part()
    rate = sample_rate or 1.0
    channels = m.channels.most_common(1)[0][0]
    entry = {"column": m.column, "kind": "sensor", "sample_rate": rate, "filter": None}
    read = "" if m.measured == survey.n else f" (lengths from {m.measured} of them, read whole)"
    part.note(("data", "modalities", m.name),
              f"{m.name}: {survey.n} signal files, {channels} channel{'s' * (channels > 1)}{read}; "
              + lengths_text(m, rate))
    if sample_rate is None:
        part.note(("data", "modalities", m.name),
                  "sample_rate 1: text and .npy files carry no rate and none was given (--sample-rate); "
                  "lengths and windows below are in samples. Set the real rate in Hz to use filters")
        part.warnings.append(f"{m.name}: no --sample-rate given; the config says 1 Hz (times are in samples)")
    part.note(("data", "modalities", m.name),
              "no band-pass filter: the rockets and LITE learn from the raw signal (add filter: {band: [low, "
              "high]} to remove drift or mains hum)")
    length = int(m.lengths.max())  # ingest pads every one to the longest
    if length > LENGTH_SPREAD * max(m.median_length, 1):
        entry["length_s"] = round(m.median_length / rate, 6)
        part.note(("data", "modalities", m.name), f"length_s {number(entry['length_s'])}: the longest recording "
                  f"is over {LENGTH_SPREAD:g}x the median; every one is cut or padded to the median")
        length = round(entry["length_s"] * rate)
    part.modalities[m.name] = entry
    sfx = suffix(m, survey)
    raw = f"raw{sfx}"
    part.features[raw] = {"kind": "raw", "modality": m.name}
    part.note(("features", raw), "the signal itself: rockets and LITE learn their own filters")
    for arch, score in (("minirocket", "92.5"), ("multirocket", "92.6"), ("hydra", "92.3")):
        part.plans.append(_rocket(arch, f"{arch}{sfx}", raw, channels, length, rate, score))
    if preset == "fast":
        part.note(("features", raw), "preset fast: the three rockets only; LITE (preset good) scored 77.1 against "
                  f"their 92.3-92.6 on {TSC} and cost most of the run")
        return part
    seeds = (0,) if preset == "good" else (0, 1, 2)
    epochs = 150 if preset == "good" else 300
    for seed in seeds:
        name = f"lite{sfx}" if seed == 0 else f"lite{sfx}_s{seed}"
        part.plans.append(_lite(name, raw, channels, length, rate, epochs, seed, survey.n))
    return part


def _windows(window: int, rate: float, eval_hop: int, random_offset: bool) -> dict:
    return {"length_s": round(window / rate, 6), "hop_s": round(window / rate, 6),
            "eval_hop_s": round(eval_hop / rate, 6), "aggregate": "mean", "random_offset": random_offset}


def _rocket(arch: str, name: str, feature: str, channels: int, length: int, rate: float, score: str) -> ModelPlan:
    spec = {"arch": arch, "feature": feature, "args": {} if arch == "hydra" else {"n_kernels": 10000}}
    what = {"minirocket": "aeon's MiniRocketClassifier (the same labels, tests/models/test_rocket_parity.py)",
            "multirocket": "MiniRocket's kernels on the signal and its first difference, four statistics each",
            "hydra": "aeon's HydraClassifier: random kernels competing in groups, their counts (98.2 on OSULeaf, "
                     "where the other two give 94.5-94.9)"}[arch]
    why = [f"{what}: {score} mean UAR on {TSC}; its folds fit in one job, the ridge chosen by cross-validation "
           "over the whole training part"]
    plan = ModelPlan(name, spec, why, "rocket", (channels, length))
    if length > ROCKET_LONG:
        spec["windows"] = _windows(ROCKET_WINDOW, rate, ROCKET_WINDOW, False)
        plan.shape, plan.views = (channels, ROCKET_WINDOW), (length / ROCKET_WINDOW,) * 2
        why.append(f"windows of {seconds(ROCKET_WINDOW / rate)} ({number(ROCKET_WINDOW)} samples): recordings of "
                   f"{number(length)} samples give few examples each, the ridge learns from their windows and decides "
                   "per recording (the transform costs the same either way)")
    return plan


def _lite(name: str, feature: str, channels: int, length: int, rate: float, epochs: int, seed: int,
          n: int) -> ModelPlan:
    batch = 64 if n >= 256 else 16
    spec = {"arch": "lite", "feature": feature, "train": {"epochs": epochs, "batch_size": batch, "lr": 0.001}}
    why = [f"LITE (10,012 parameters) with its paper's Adam at 1e-3; {epochs} epochs (its paper trains 1,500), "
           "the development split keeping the best: a network beside the rockets, which select keeps where it helps"
           + ("" if batch == 64 else f"; batches of {batch}, not the paper's 64: {n} recordings give few steps an "
              "epoch")]
    if seed:
        spec["train"]["seed"] = seed
        why = [f"LITE again with seed {seed}: LITETime averages five such networks; select may keep several"]
    plan = ModelPlan(name, spec, why, "network", (channels, length))
    if length > NETWORK_LONG:
        spec["windows"] = _windows(NETWORK_WINDOW, rate, NETWORK_WINDOW // 2, True)
        plan.shape = (channels, NETWORK_WINDOW)
        plan.views = (length / NETWORK_WINDOW, 2 * length / NETWORK_WINDOW)
        why.append(f"windows of {seconds(NETWORK_WINDOW / rate)} ({number(NETWORK_WINDOW)} samples, as "
                   f"config/bonn.yaml): recordings are {seconds(length / rate)}, {number(length)} samples at "
                   f"{number(rate)} Hz; decided per recording on windows every {seconds(NETWORK_WINDOW / 2 / rate)}")
    return plan
