"""Validate an experiment's config once, at the edge: JSON-schema check, defaults filled, cross-references resolved.

The schema (``deepself/schemas/config.schema.yaml``) is the single description of every key.
:func:`validate_config` returns a new, complete config in which every default is explicit and
every model's ``train`` settings are merged over the top-level ones, so that each stage receives
plain, fully specified parameters.
"""

from __future__ import annotations

import copy
import math
import os
import re

import jsonschema
import yaml

from deepself.config.checks import _check_names, _check_references, _expand_seeds, _resolve_augment
from deepself.config.schema import _DefaultFilling, _deepest, _describe, _shipped_schema
from deepself.errors import DeepselfError

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
