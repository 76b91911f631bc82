"""Files and config values are data, never code: every loader of the package is one that cannot run code.

The package's source is read as syntax trees (comments and strings do not count): torch checkpoints
and downloads are loaded with ``weights_only=True``, numpy with ``allow_pickle=False``, YAML with
``safe_load``; nothing calls ``eval``, ``exec`` or ``pickle``. The workflow's rules (``*.smk``, not
plain Python) are searched as text for the same calls.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted((REPO / "deepself").rglob("*.py"))
RULES = sorted((REPO / "workflow").rglob("*.smk")) + [REPO / "Snakefile", REPO / "workflow" / "Snakefile"]


def calls(path: Path):
    """(dotted name of the callee, call node) of every call in a Python file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node


def keyword(call: ast.Call, name: str):
    """The constant value of keyword ``name`` of a call (``...`` when it is not a constant, None when absent)."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else ...
    return None


def where(path: Path, call: ast.Call) -> str:
    return f"{path.relative_to(REPO)}:{call.lineno}: {ast.unparse(call)[:120]}"


def test_the_scan_sees_the_package():
    names = {name for path in SOURCES for name, _ in calls(path)}
    assert "torch.load" in names and "np.load" in names and "yaml.safe_load" in names


def test_torch_loads_only_weights():
    unsafe = [where(path, call) for path in SOURCES for name, call in calls(path)
              if name.split(".")[-1] in ("load", "load_state_dict_from_url") and name.split(".")[0] == "torch"
              and keyword(call, "weights_only") is not True]
    assert unsafe == []


def test_checkpoints_and_weight_files_are_read_by_one_function():
    readers = [REPO / "deepself" / "inference.py", REPO / "deepself" / "models" / "backbone.py"]
    direct = [where(path, call) for path in readers for name, call in calls(path) if name == "torch.load"]
    uses = [path.name for path in readers if "load_tensors" in {name for name, _ in calls(path)}]
    assert direct == [] and uses == ["inference.py", "backbone.py"]


def test_numpy_never_unpickles():
    unsafe = [where(path, call) for path in SOURCES for name, call in calls(path)
              if name in ("np.load", "numpy.load") and keyword(call, "allow_pickle") is not False]
    assert unsafe == []


def test_yaml_is_read_safely_and_nothing_evaluates_code():
    risky = {"eval", "exec", "compile", "__import__", "yaml.load", "yaml.unsafe_load", "yaml.full_load",
             "pickle.load", "pickle.loads", "marshal.loads", "ast.literal_eval"}
    found = [where(path, call) for path in SOURCES for name, call in calls(path) if name in risky]
    imports = [f"{path.relative_to(REPO)}: imports {alias.name}" for path in SOURCES
               for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, (ast.Import, ast.ImportFrom))
               for alias in node.names
               if (getattr(node, "module", None) or alias.name).split(".")[0] in ("pickle", "dill", "marshal")]
    assert found + imports == []


@pytest.mark.parametrize("path", RULES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_workflow_evaluates_no_config_value(path):
    text = "\n".join(line.split("#")[0] for line in path.read_text().splitlines())
    assert not re.findall(r"(?<![\w.])(eval|exec|compile|__import__)\s*\(|yaml\.(unsafe_|full_)?load\s*\(|pickle", text)
