"""Validate an experiment's config once, at the edge: JSON-schema check, defaults filled, cross-references resolved.

The schema (``deepself/schemas/config.schema.yaml``) is the single description of every key.
:func:`validate_config` returns a new, complete config in which every default is explicit and
every model's ``train`` settings are merged over the top-level ones, so that each stage receives
plain, fully specified parameters.
"""

from __future__ import annotations

import copy
import functools
import glob
import json
import math
import os
import re
import sys
from pathlib import Path

import jsonschema
import yaml

from deepself.errors import DeepselfError

SCHEMA = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"

_DefaultFilling = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    {
        "properties": lambda validator, properties, instance, schema: _fill_defaults(
            validator, properties, instance, schema
        )
    },
)


def _fill_defaults(validator, properties, instance, schema):
    if isinstance(instance, dict):
        for key, sub in properties.items():
            if isinstance(sub, dict) and "default" in sub and key not in instance:
                instance[key] = copy.deepcopy(sub["default"])
    yield from jsonschema.Draft7Validator.VALIDATORS["properties"](validator, properties, instance, schema)


# Layouts of the stores models learn from, by feature kind, and the augmentations
# (``train.augment`` keys) that fit each; None is a probe's embeddings (see deepself.augment).
FEATURE_LAYOUTS = {"raw": "CT", "image": "CHW", "spectrogram": "CFT", "logmel": "CFT", "scalogram": "CFT"}
AUGMENT_FITS = {"CFT": ("specaugment",), "CT": ("shift", "gain_db"), "CHW": ("flip", "crop_pad")}
AUGMENT_LAYOUTS = {"CFT": "feature maps (channels, frequency, time)", "CT": "signals (channels, time)",
                   "CHW": "images (channels, height, width)", None: "a probe's embeddings"}


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


# libyaml's parser where PyYAML was built with it: the schema reads in 10 ms instead of 120 ms
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_schema(path: str | os.PathLike = SCHEMA) -> dict:
    with open(path) as fh:
        return yaml.load(fh, Loader=_SafeLoader)


@functools.lru_cache(maxsize=1)
def _shipped_schema() -> dict:
    """The workflow's schema, read once per process (callers must not change it)."""
    return load_schema()


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(error: jsonschema.ValidationError, head: str = "config key ") -> str:
    """One line that names the config key (``head`` and its path) and says what is wrong with it."""
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        where = f"{key}." if error.absolute_path else ""
        hint = f" (known keys: {', '.join(allowed)})" if allowed else ""
        return f"{head}{where}{unknown[0]}: unknown key{hint}"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        where = f"{key}." if error.absolute_path else ""
        return f"{head}{where}{missing[0]}: missing (required)"
    if error.validator == "enum":
        return f"{head}{key}: {error.instance!r} is not one of {error.validator_value}"
    if error.validator == "pattern" and error.validator_value == _NAME_PATTERN:
        return f"{head}{key}: {error.instance!r} must be letters, digits, '_', '.' or '-'"
    if _choice(error):
        options = [repr(o["const"]) if "const" in o else
                   f"{'an' if o['type'][0] in 'aeiou' else 'a'} {o['type']}"
                   + (f" of at least {o['minimum']}" if "minimum" in o else "") for o in error.validator_value]
        return f"{head}{key}: {error.instance!r} must be {' or '.join(options)}"
    return f"{head}{key}: {error.message}"


# The schema's pattern of names (experiment, modalities, features, models, fusions).
_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# A number as YAML 1.2 writes it. YAML 1.1 (PyYAML, Snakemake) reads a float only with a dot
# ("1.0e-3"), so ``lr: 1e-3`` arrives as the string "1e-3".
_NUMBER = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _coerce_numbers(instance, validator) -> None:
    """Turn numeric-looking strings into numbers where the schema wants a number (and takes no string).

    ``lr: 1e-3`` is a number to anyone but YAML 1.1; each such value is found by the schema's own
    type errors (in every branch: if/then, $ref) and replaced in place, until none is left.
    """
    while True:
        fixed = False
        for error in validator.iter_errors(instance):
            for leaf in [error, *error.context]:
                wanted = leaf.validator_value if leaf.validator == "type" else ()
                wanted = [wanted] if isinstance(wanted, str) else wanted
                text = leaf.instance
                if "number" in wanted and isinstance(text, str) and _NUMBER.match(text.strip()):
                    parent = instance
                    for part in list(leaf.absolute_path)[:-1]:
                        parent = parent[part]
                    number = float(text)
                    if math.isfinite(number) and parent[leaf.absolute_path[-1]] is text:
                        parent[leaf.absolute_path[-1]] = number
                        fixed = True
        if not fixed:
            return


def _choice(error: jsonschema.ValidationError) -> bool:
    """A oneOf of plain values (a number or a word such as ``auto``): said as one line of choices."""
    return error.validator == "oneOf" and all(set(o) <= {"type", "minimum", "const"}
                                              for o in error.validator_value)


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Within if/then and oneOf, the innermost error names the key a user has to fix."""
    while error.context and not _choice(error):
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Check ``config`` against the schema and return a complete copy with defaults filled in.

    Parameters
    ----------
    config
        The experiment config as loaded from YAML.
    schema
        The JSON schema (default: the workflow's ``config.schema.yaml``).

    Returns
    -------
    dict
        The validated config; ``models.<m>.train`` holds the top-level ``train`` merged with the
        model's own overrides.

    Raises
    ------
    DeepselfError
        Naming the first key that is unknown, missing, of the wrong type or out of range, or a
        reference (a model's feature, a fusion's model, a feature's modality) that does not exist.

    Notes
    -----
    A string that reads as a number (``"1e-3"``: YAML 1.1 reads ``1e-3`` so) is taken as that
    number where the schema wants a number and takes no string.
    """
    schema = _shipped_schema() if schema is None else schema
    config = copy.deepcopy(dict(config))
    validator = _DefaultFilling(schema)
    _coerce_numbers(config, jsonschema.Draft7Validator(schema))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise DeepselfError(_describe(_deepest(errors[0])))

    train_schema = {**schema["definitions"]["train"], "definitions": schema["definitions"]}
    own_augment = {name for name, model in config["models"].items() if "augment" in model["train"]}
    for name, model in config["models"].items():
        merged = {**config["train"], **model["train"]}
        _coerce_numbers(merged, jsonschema.Draft7Validator(train_schema))
        for error in _DefaultFilling(train_schema).iter_errors(merged):
            path = ["models", name, "train", *error.absolute_path]
            error.path.clear()
            error.path.extend(path)
            raise DeepselfError(_describe(error))
        model["train"] = merged
    _expand_seeds(config)
    _check_names(config)
    _check_references(config)
    _resolve_augment(config, own_augment, schema)
    return config


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


def feature_schema(kind: str) -> dict:
    """The schema's keys of a feature ``kind`` (``kind`` and ``modality`` left out): name -> schema."""
    schema = _shipped_schema()
    for branch in schema["definitions"]["feature"]["allOf"]:
        condition = branch["if"]["properties"]["kind"]
        if kind == condition.get("const") or kind in condition.get("enum", ()):
            return {k: v for k, v in branch["then"]["properties"].items() if k not in ("kind", "modality")}
    return {}


@functools.lru_cache(maxsize=None)
def _feature_validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator({"type": "object", "properties": feature_schema(kind)})


def check_feature_schema(kind: str, params: dict, key: str) -> None:
    """Check a feature's parameters against the schema's keys for its ``kind``: types, ranges, names.

    Parameters the schema does not know are left alone (the feature's own checks see to them).

    Raises
    ------
    DeepselfError
        ``f"{key}.<parameter>: ..."``, for the first parameter the schema refuses.
    """
    errors = sorted(_feature_validator(kind).iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise DeepselfError(_describe(_deepest(errors[0]), head=f"{key}."))


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
        from deepself.signal.features import check_params

        # Without length_s the length is known only after ingest: the checks that need it
        # (n_fft against the length) wait for the feature stage, the others run now.
        n_samples = round(modality["length_s"] * rate) if modality["length_s"] else sys.maxsize
        params = {k: v for k, v in feature.items() if k not in ("kind", "modality")}
        check_params(feature["kind"], params, rate, n_samples, f"config key features.{name}")


def load_config(path: str | os.PathLike) -> dict:
    """Read a YAML config file and validate it (see :func:`validate_config`)."""
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    except OSError as err:
        raise DeepselfError(f"{path}: cannot read config ({err.strerror})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = " ".join(str(getattr(err, "problem", None) or err).split())
        hint = "; indent with spaces, YAML allows no tabs" if "'\\t'" in problem else ""
        raise DeepselfError(f"{path}: {where}not valid YAML ({problem}){hint}") from None
    if not isinstance(raw, dict):
        raise DeepselfError(f"{path}: a config must be a mapping of keys to values")
    return validate_config(raw)


def _rows(schema: dict, defs: dict, prefix: str) -> list[tuple[str, str, str, str]]:
    rows, required = [], set(schema.get("required", []))
    for key, sub in schema.get("properties", {}).items():
        if "$ref" in sub:
            sub = {**defs[sub["$ref"].split("/")[-1]], **{k: v for k, v in sub.items() if k != "$ref"}}
        kind = sub.get("type", "")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        if "enum" in sub:
            kind = " / ".join("null" if v is None else str(v) for v in sub["enum"])
        if "oneOf" in sub:
            kind = " or ".join(o.get("type", json.dumps(o.get("const"))) for o in sub["oneOf"])
        # no default: required when the schema says so, else optional (left out: not set)
        default = f"`{json.dumps(sub['default'])}`" if "default" in sub else "required" if key in required else "unset"
        rows.append((f"{prefix}{key}", kind, default, " ".join(sub.get("description", "").split())))
        if "properties" in sub:
            rows += _rows(sub, defs, f"{prefix}{key}.")
        extra = sub.get("additionalProperties")
        if isinstance(extra, dict) and "$ref" in extra:
            extra = defs[extra["$ref"].split("/")[-1]]
        if isinstance(extra, dict) and "properties" in extra:
            rows += _rows(extra, defs, f"{prefix}{key}.<name>.")
    return rows


def schema_markdown(schema: dict | None = None) -> str:
    """Every config key of the schema as a markdown table (key, type, default, description)."""
    schema = load_schema() if schema is None else schema
    defs = schema["definitions"]
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | {d} | {desc} |" for k, t, d, desc in _rows(schema, defs, "")]
    for name, definition in [("features.<name> (by kind)", defs["feature"]), ("models.<name> (by arch)", defs["model"])]:
        for branch in definition.get("allOf", []):
            condition = next(iter(branch["if"]["properties"].values()))
            label = condition.get("const") or "/".join(condition.get("enum", []))
            props = branch["then"]["properties"]
            if "args" in props:
                props, prefix = props["args"]["properties"], "models.<name>.args."
            else:
                props = {k: v for k, v in props.items() if k not in ("kind", "modality")}
                prefix = "features.<name>."
            if not props:
                continue
            lines += ["", f"**{name}: {label}**", "", "| key | type | default | description |", "|---|---|---|---|"]
            lines += [f"| `{k}` | {t} | {d} | {desc} |"
                      for k, t, d, desc in _rows({"properties": props}, defs, prefix)]
    return "\n".join(lines) + "\n"


DOC_BEGIN = "<!-- config keys: generated by `deepself config-doc` from deepself/schemas/config.schema.yaml -->"
DOC_END = "<!-- end of config keys -->"


def write_config_doc(readme: str | os.PathLike) -> None:
    """Replace the generated table of config keys in ``readme`` (between the two marker lines)."""
    text = Path(readme).read_text()
    if DOC_BEGIN not in text or DOC_END not in text:
        raise DeepselfError(f"{readme}: no generated section (the lines {DOC_BEGIN} and {DOC_END})")
    head, rest = text.split(DOC_BEGIN, 1)
    tail = rest.split(DOC_END, 1)[1]
    Path(readme).write_text(f"{head}{DOC_BEGIN}\n{schema_markdown()}{DOC_END}{tail}")


def local_gpu() -> bool:
    """Whether the machine that runs snakemake has an NVIDIA GPU that ``CUDA_VISIBLE_DEVICES`` leaves visible.

    Seen in the driver's ``/proc`` entries, without importing torch, which would cost the DAG seconds.
    """
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1")
    return bool(glob.glob("/proc/driver/nvidia/gpus/*")) and not hidden


def training_gpu_units(train: dict) -> int:
    """Units of the workflow's ``gpu`` resource a training job takes (``train.gpu``).

    ``auto``: 1 when :func:`local_gpu`, else 0, so that CPU-only training jobs are limited by
    ``--cores`` alone.
    """
    if train["gpu"] != "auto":
        return int(train["gpu"])
    return int(local_gpu())


# Models whose training fits a head on features computed once (no epochs): a fold takes seconds
FITTED_HEAD_ARCHS = ("minirocket", "multirocket", "hydra", "multirocket_hydra")


def fits_a_head(model: dict) -> bool:
    """Whether the validated ``models.<name>`` entry fits a head on frozen features (a rocket, a probe).

    The same answer as ``deepself.train.fits_a_head``, which asks the model's builder; this one
    imports no torch, for the job graph (a test holds the two together).
    """
    return model["arch"] in FITTED_HEAD_ARCHS or model["args"].get("train_mode") == "probe"


def training_folds_per_job(train: dict, fitted_head: bool = False) -> int:
    """Held-out folds that one training job trains in turn (``train.folds_per_job``).

    ``auto``: all of a model's folds in one job when its jobs take the local GPU (:func:`local_gpu`
    and a ``gpu`` unit: they would wait for it one after the other anyway, and each further job pays
    its start-up, seconds of imports, CUDA and reading the data, against about 3 s of training a
    fold in the ESC-10 benchmark on an H200), or when the model fits a head on frozen features
    (``fitted_head``, :func:`fits_a_head`: a rocket's fold fits in seconds after a start-up of
    imports and numba's compiled transform, and a probe's folds share one pass of embeddings);
    else 1, a job per fold, so that the folds of a CPU-only machine (or of a cluster's nodes,
    submitted from a machine without a GPU) train side by side.
    """
    if train["folds_per_job"] != "auto":
        return int(train["folds_per_job"])
    return sys.maxsize if fitted_head or (training_gpu_units(train) and local_gpu()) else 1
