"""Validate an experiment's config once, at the edge: JSON-schema check, defaults filled, cross-references resolved.

The schema (``deepself/schemas/config.schema.yaml``) is the single description of every key.
:func:`validate_config` returns a new, complete config in which every default is explicit and
every model's ``train`` settings are merged over the top-level ones, so that each stage receives
plain, fully specified parameters.
"""

from __future__ import annotations

import copy
import json
import os
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


def load_schema(path: str | os.PathLike = SCHEMA) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line that names the config key and says what is wrong with it."""
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        where = f"{key}." if error.absolute_path else ""
        hint = f" (known keys: {', '.join(allowed)})" if allowed else ""
        return f"config key {where}{unknown[0]}: unknown key{hint}"
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        where = f"{key}." if error.absolute_path else ""
        return f"config key {where}{missing[0]}: missing (required)"
    if error.validator == "enum":
        return f"config key {key}: {error.instance!r} is not one of {error.validator_value}"
    if error.validator == "pattern":
        return f"config key {key}: {error.instance!r} must be letters, digits, '_', '.' or '-'"
    return f"config key {key}: {error.message}"


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Within if/then and oneOf, the innermost error names the key a user has to fix."""
    while error.context:
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
    """
    schema = load_schema() if schema is None else schema
    config = copy.deepcopy(dict(config))
    validator = _DefaultFilling(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise DeepselfError(_describe(_deepest(errors[0])))

    train_schema = {**schema["definitions"]["train"], "definitions": schema["definitions"]}
    for name, model in config["models"].items():
        merged = {**config["train"], **model["train"]}
        for error in _DefaultFilling(train_schema).iter_errors(merged):
            path = ["models", name, "train", *error.absolute_path]
            error.path.clear()
            error.path.extend(path)
            raise DeepselfError(_describe(error))
        model["train"] = merged
    _check_references(config)
    return config


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
    adapter, data = config["data"]["adapter"], config["data"]
    if adapter == "sheet" and not data["sheet"]:
        raise DeepselfError("config key data.sheet: missing (required when data.adapter is sheet)")
    if adapter in ("esc10", "bonn", "imagefolder", "aeon") and not data["root"]:
        raise DeepselfError(f"config key data.root: missing (required when data.adapter is {adapter})")


def load_config(path: str | os.PathLike) -> dict:
    """Read a YAML config file and validate it (see :func:`validate_config`)."""
    try:
        with open(path) as fh:
            raw = yaml.safe_load(fh)
    except OSError as err:
        raise DeepselfError(f"{path}: cannot read config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise DeepselfError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise DeepselfError(f"{path}: a config must be a mapping of keys to values")
    return validate_config(raw)


def _rows(schema: dict, defs: dict, prefix: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for key, sub in schema.get("properties", {}).items():
        if "$ref" in sub:
            sub = {**defs[sub["$ref"].split("/")[-1]], **{k: v for k, v in sub.items() if k != "$ref"}}
        kind = sub.get("type", "")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        if "enum" in sub:
            kind = " / ".join("null" if v is None else str(v) for v in sub["enum"])
        if "oneOf" in sub:
            kind = " or ".join(o.get("type", json.dumps(o.get("const"))) for o in sub["oneOf"])
        default = f"`{json.dumps(sub['default'])}`" if "default" in sub else "required"
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
