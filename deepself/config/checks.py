"""The checks of a config that the schema cannot say: seeds expanded, names, references, augmentations, signals.

Each takes the config :func:`deepself.config.validate_config` has filled with defaults and
raises :class:`~deepself.errors.DeepselfError` naming the key to fix.
"""

from __future__ import annotations

import copy
import re
import sys

from deepself.config.schema import _NAME_PATTERN, _DefaultFilling, _shipped_schema
from deepself.errors import DeepselfError

# Layouts of the stores models learn from, by feature kind; None is a probe's embeddings.
FEATURE_LAYOUTS = {"raw": "CT", "image": "CHW", "spectrogram": "CFT", "logmel": "CFT", "scalogram": "CFT"}
AUGMENT_LAYOUTS = {"CFT": "feature maps (channels, frequency, time)", "CT": "signals (channels, time)",
                   "CHW": "images (channels, height, width)", None: "a probe's embeddings"}
# The one list of augmentations: each ``train.augment`` key of the schema and the layout it fits
# (None: any input, as mixup mixes whole batches). deepself.training.augment applies them, the
# probe refuses them all; tests/test_augment_keys.py fails when the schema or augment.py drifts.
AUGMENTATIONS = {"specaugment": "CFT", "shift": "CT", "gain_db": "CT", "flip": "CHW", "crop_pad": "CHW",
                 "mixup": None}
# The augmentations that fit each layout and no other (mixup, fitting any, is none of them).
AUGMENT_FITS = {layout: tuple(key for key, fits in AUGMENTATIONS.items() if fits == layout)
                for layout in AUGMENT_LAYOUTS if layout is not None}


def unfit_augmentations(spec: dict, layout: str | None) -> list[str]:
    """The augmentations switched on in ``spec`` (``train.augment``) that cannot apply to ``layout``.

    Parameters
    ----------
    spec : dict
        The validated ``train.augment`` settings.
    layout : {"CFT", "CT", "CHW", None}
        Layout of the model's input; None for a probe's embeddings, which are computed once from
        the samples and so cannot be augmented batch by batch (mixup, which mixes any input, can).

    Returns
    -------
    list of str
        Their keys, in the order of :data:`AUGMENT_FITS`.
    """
    on = [key for keys in AUGMENT_FITS.values() for key in keys if spec.get(key)]
    return [key for key in on if key not in AUGMENT_FITS.get(layout, ())]


def _expand_seeds(config: dict) -> None:
    """A model with ``seeds: N`` (N > 1) becomes N members ``<name>_s<k>`` trained with seeds
    ``train.seed + k``, and a fusion ``<name>`` of their mean; fusions that list ``<name>`` list its members.

    The members have ``seeds: 1``, so the validated config validates to itself.
    """
    members, models = {}, {}
    for name, model in config["models"].items():
        if model["seeds"] == 1:
            models[name] = model
            continue
        members[name] = [f"{name}_s{k}" for k in range(model["seeds"])]
        for k, member in enumerate(members[name]):
            if member in config["models"]:
                raise DeepselfError(f"config key models.{name}.seeds: its member {member} is already a model; "
                                    "rename one of them")
            models[member] = {**copy.deepcopy(model), "seeds": 1,
                              "train": {**model["train"], "seed": model["train"]["seed"] + k}}
    config["models"] = models
    for fusion in config["fusions"].values():
        fusion["models"] = [m for name in fusion["models"] for m in members.get(name, [name])]
    for name, names in members.items():
        if name in config["fusions"]:
            raise DeepselfError(f"config key models.{name}.seeds: the seeds' fusion {name} is already a fusion; "
                                "rename one of them")
        fusion = {"models": names, "method": "mean"}
        _DefaultFilling(_shipped_schema()["properties"]["fusions"]["additionalProperties"]).validate(fusion)
        config["fusions"][name] = fusion


def _check_names(config: dict) -> None:
    """Names become folders and shell words: the whole name must match, a trailing line break included.

    The schema's ``$`` lets ``"exp\\n"`` through (it matches before a final line break in Python).
    """
    named = [("experiment", config["experiment"])]
    for section in ("data.modalities", "features", "models", "fusions"):
        block = config["data"]["modalities"] if section == "data.modalities" else config[section]
        named += [(f"{section}.{name}", name) for name in block]
    for key, name in named:
        if not re.fullmatch(_NAME_PATTERN.strip("^$"), name):
            raise DeepselfError(f"config key {key}: {name!r} must be letters, digits, '_', '.' or '-'")


def _resolve_augment(config: dict, own: set[str], schema: dict) -> None:
    """Give each model the augmentations that fit its input; refuse those that cannot.

    A model's own ``train.augment`` must fit its input. The top-level one is every model's
    default: each model keeps the augmentations that fit it and the others are switched off in
    its validated config (``deepself check-config --show`` lists them), but one that fits no
    model at all is refused.
    """
    off = {k: v["default"] for k, v in schema["definitions"]["train"]["properties"]["augment"]["properties"].items()}
    used: set[str] = set()
    for name, model in config["models"].items():
        kind = config["features"][model["feature"]]["kind"]
        layout = None if model["args"].get("train_mode") == "probe" else FEATURE_LAYOUTS[kind]
        augment = model["train"]["augment"]
        wrong = unfit_augmentations(augment, layout)
        if wrong and name in own:
            raise DeepselfError(
                f"config key models.{name}.train.augment.{wrong[0]}: does not apply to {AUGMENT_LAYOUTS[layout]}, "
                f"what model {name} learns from (feature {model['feature']!r}); remove it"
            )
        if name not in own:
            used |= {k for k in AUGMENT_FITS.get(layout, ()) if augment.get(k)}
            model["train"]["augment"] = {**augment, **{k: off[k] for k in wrong}}
    top = [k for keys in AUGMENT_FITS.values() for k in keys if config["train"]["augment"].get(k)]
    unused = [k for k in top if k not in used and len(own) < len(config["models"])]
    if unused:
        raise DeepselfError(f"config key train.augment.{unused[0]}: applies to none of the models (it fits "
                            f"{' and '.join(AUGMENT_LAYOUTS[l] for l, keys in AUGMENT_FITS.items() if unused[0] in keys)}"
                            "); remove it")


def _check_references(config: dict) -> None:
    modalities = config["data"]["modalities"]
    for name, feature in config["features"].items():
        if feature["modality"] is None:
            if len(modalities) > 1:
                raise DeepselfError(
                    f"config key features.{name}.modality: must be set, there are several modalities "
                    f"({', '.join(modalities)})"
                )
            feature["modality"] = next(iter(modalities))
        elif feature["modality"] not in modalities:
            raise DeepselfError(
                f"config key features.{name}.modality: {feature['modality']!r} is not a modality "
                f"(data.modalities has {', '.join(modalities)})"
            )
        if feature["kind"] != "image" and modalities[feature["modality"]]["kind"] == "image":
            raise DeepselfError(f"config key features.{name}.kind: {feature['kind']} needs a signal, "
                                f"modality {feature['modality']!r} holds images (use kind: image)")
    for name, model in config["models"].items():
        if model["feature"] not in config["features"]:
            raise DeepselfError(
                f"config key models.{name}.feature: {model['feature']!r} is not a feature "
                f"(features has {', '.join(config['features']) or 'none'})"
            )
    _check_fusions(config)
    for name, model in config["models"].items():
        hp = model["train"]
        if config["cv"]["dev_fraction"] == 0 and (hp["patience"] or hp["scheduler"] == "plateau"):
            what = "patience" if hp["patience"] else "scheduler"
            raise DeepselfError(f"config key models.{name}.train.{what}: needs a development split, and "
                                "cv.dev_fraction is 0; set cv.dev_fraction above 0 or leave it out")
    adapter, data = config["data"]["adapter"], config["data"]
    if adapter == "sheet" and not data["sheet"]:
        raise DeepselfError("config key data.sheet: missing (required when data.adapter is sheet)")
    if adapter in ("esc10", "bonn", "imagefolder", "aeon") and not data["root"]:
        raise DeepselfError(f"config key data.root: missing (required when data.adapter is {adapter})")
    if "{" in config["results"] or "}" in config["results"]:
        # Snakemake reads braces in a path as wildcards.
        raise DeepselfError(f"config key results: {config['results']!r} holds a brace; name the folder without {{ }}")
    _check_signal_settings(config)


def _check_fusions(config: dict) -> None:
    """Each fusion's models exist, its name is not a model's, and a development split is there when it needs one."""
    for name, fusion in config["fusions"].items():
        for model in fusion["models"]:
            if model not in config["models"]:
                raise DeepselfError(f"config key fusions.{name}.models: {model!r} is not a model")
        if name in config["models"]:
            raise DeepselfError(f"config key fusions.{name}: a model has the same name")
        top = fusion.get("top")
        if top is not None and top > len(fusion["models"]):
            raise DeepselfError(f"config key fusions.{name}.top: {top} is more than the {len(fusion['models'])} "
                                "models it fuses; set it to at most that, or leave it out to fuse them all")
        if top is not None and config["cv"]["dev_fraction"] == 0:
            raise DeepselfError(f"config key fusions.{name}.top: chooses models by development UAR, and "
                                "cv.dev_fraction is 0 (no development split); leave top out or set cv.dev_fraction "
                                "above 0")
        if fusion["method"] in ("weighted", "select") and config["cv"]["dev_fraction"] == 0:
            how = "weighs by development UAR" if fusion["method"] == "weighted" else \
                "learns its weights from the development predictions"
            raise DeepselfError(f"config key fusions.{name}.method: {fusion['method']} {how}, and "
                                "cv.dev_fraction is 0 (no development split); use mean or set cv.dev_fraction above 0")


def known_rate(modality: dict) -> float | None:
    """The sample rate a modality's signals will have, if the config alone decides it.

    ``resample`` decides it; else ``sample_rate``, the rate of sensor files and the rate audio
    files are resampled to when theirs differs. Without either, audio files keep their own rate,
    which the config does not know.
    """
    if modality["kind"] == "image":
        return None
    rate = modality["resample"] or modality["sample_rate"]
    return float(rate) if rate else None


def _check_signal_settings(config: dict) -> None:
    """The checks of band-pass and feature settings that the config and a known rate decide, before any job."""
    modalities = config["data"]["modalities"]
    for name, modality in modalities.items():
        key = f"data.modalities.{name}"
        if modality["kind"] == "sensor" and not modality["sample_rate"]:
            raise DeepselfError(f"config key {key}.sample_rate: missing; sensor files (text tables, .npy) carry no "
                                "sample rate, set it in Hz")
        band = (modality["filter"] or {}).get("band")
        if band is None:
            continue
        if not 0 < band[0] < band[1]:
            raise DeepselfError(f"config key {key}.filter.band: [{band[0]:g}, {band[1]:g}] Hz is not a band with "
                                "0 < low < high; give [low, high]")
        rate = known_rate(modality)
        if rate is not None:
            # scipy is loaded only when a filter can be checked: parsing the workflow stays light
            from deepself.signal.filtering import check_band

            check_band(rate, band, modality["filter"]["order"], key=f"config key {key}.filter")
    for name, feature in config["features"].items():
        modality = modalities[feature["modality"]]
        rate = known_rate(modality)
        if feature["kind"] in ("raw", "image") or rate is None:
            continue
        from deepself.signal.params import check_params

        # Without length_s the length is known only after ingest: the checks that need it
        # (n_fft against the length) wait for the feature stage, the others run now.
        n_samples = round(modality["length_s"] * rate) if modality["length_s"] else sys.maxsize
        params = {k: v for k, v in feature.items() if k not in ("kind", "modality")}
        check_params(feature["kind"], params, rate, n_samples, f"config key features.{name}")
