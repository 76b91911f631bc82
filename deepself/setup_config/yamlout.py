"""Write a config as YAML with a comment above each key that has one.

PyYAML writes no comments, so the layout is done here: a mapping whose keys carry no comment and
that fits on a line is written in flow style (``{arch: lite, feature: raw}``, as the shipped
configs are), anything else as a block. The values themselves are PyYAML's, and :func:`dump`
checks that the text reads back as the config it was given.
"""

from __future__ import annotations

import textwrap

import yaml

WIDTH = 110


def dump(config: dict, notes: dict[tuple, list[str]], header: list[str]) -> str:
    """``config`` as YAML text: ``header`` as comment lines on top, ``notes[path]`` above the key at ``path``."""
    lines = [line for text in header for line in _comment(text, "")]
    _block(config, (), "", notes, lines)
    text = "\n".join(lines) + "\n"
    if yaml.safe_load(text) != config:  # a bug of this module, never the user's input
        raise AssertionError("deepself init: the YAML written does not read back as the config planned")
    return text


def _comment(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH - len(indent) - 2, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# ",
                         break_long_words=False, break_on_hyphens=False) or [f"{indent}#"]


def _block(mapping: dict, path: tuple, indent: str, notes: dict, lines: list[str]) -> None:
    for key, value in mapping.items():
        here = (*path, key)
        for text in notes.get(here, []):
            lines.extend(_comment(text, indent))
        flow = f"{indent}{key}: {_flow(value)}"
        commented = isinstance(value, dict) and any((*here, k) in notes for k in value)
        if isinstance(value, dict) and value and (commented or len(flow) > WIDTH):
            lines.append(f"{indent}{key}:")
            _block(value, here, indent + "  ", notes, lines)
        else:
            lines.append(flow)


def _flow(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6).strip()
    return text[: -len("\n...")] if text.endswith("\n...") else text
