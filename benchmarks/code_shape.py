"""The shape of the package: modules over ~350 lines and functions over 50 lines of code.

Lines of code of a function: its lines from ``def`` to its end, less its docstring, blank lines and
comment-only lines. Prints every module with its line count (longest first) and every function
over the limit, then a one-line verdict; exits 1 when a limit is broken (``--check``).

    .venv/bin/python benchmarks/code_shape.py [--check]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "deepself"
MODULE_LINES, FUNCTION_LINES = 350, 50


def code_lines(source: list[str], node: ast.AST) -> int:
    """Lines of ``node`` that hold code: not blank, not a comment, not its docstring."""
    skip = set()
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        skip = set(range(body[0].lineno, body[0].end_lineno + 1))
    lines = range(node.lineno, node.end_lineno + 1)
    return sum(1 for i in lines if i not in skip and source[i - 1].strip() and not source[i - 1].strip().startswith("#"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a limit is broken")
    args = parser.parse_args()
    modules, functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        source = text.splitlines()
        name = str(path.relative_to(PACKAGE.parent))
        modules.append((len(source), name))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = code_lines(source, node)
                if n > FUNCTION_LINES:
                    functions.append((n, f"{name}:{node.lineno} {node.name}"))
    over = [(n, m) for n, m in modules if n > MODULE_LINES]
    for n, m in sorted(modules, reverse=True):
        print(f"{n:5d}  {m}{'   over ' + str(MODULE_LINES) if n > MODULE_LINES else ''}")
    print(f"functions over {FUNCTION_LINES} lines of code:")
    for n, f in sorted(functions, reverse=True):
        print(f"{n:5d}  {f}")
    print(f"{len(modules)} modules, {len(over)} over {MODULE_LINES} lines; {len(functions)} functions over "
          f"{FUNCTION_LINES} lines of code")
    return 1 if args.check and (over or functions) else 0


if __name__ == "__main__":
    sys.exit(main())
