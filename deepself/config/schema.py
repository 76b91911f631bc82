"""The shipped config schema: read once, a validator that fills defaults, errors said as one line.

``deepself/schemas/config.schema.yaml`` describes every key; :func:`check_feature_schema` checks a
feature's parameters against the keys of its kind.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

import jsonschema
import yaml

from deepself.errors import DeepselfError

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"

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


# libyaml's parser where PyYAML was built with it: the schema reads in 10 ms instead of 120 ms
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_schema(path: str | os.PathLike = SCHEMA) -> dict:
    """The schema as a safe loader reads it (what ``yaml.safe_load`` does, with libyaml's parser)."""
    with open(path) as fh:
        loader = _SafeLoader(fh)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()


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


def _choice(error: jsonschema.ValidationError) -> bool:
    """A oneOf of plain values (a number or a word such as ``auto``): said as one line of choices."""
    return error.validator == "oneOf" and all(set(o) <= {"type", "minimum", "const"}
                                              for o in error.validator_value)


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Within if/then and oneOf, the innermost error names the key a user has to fix."""
    while error.context and not _choice(error):
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


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
