"""The shape of the code: no module, class or function beyond its limit, counted in lines of code.

A line of code is a line that is neither blank, nor a comment, nor part of a
docstring. ``python -m harness.shape`` prints the largest of each and exits 1
when a limit is broken; ``make check`` and a unit test (tests/unit/test_code_shape.py) run it.
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = (
    "schemas", "broker", "privacy", "secagg", "training", "runtime", "tasks", "torchtrain",
    "aggregator", "worker", "simulator", "fedmq", "harness", "bench",
)  # fmt: skip
LIMITS = {"module": 300, "class": 200, "function": 40}


@dataclass(frozen=True, order=True)
class Measured:
    """One module, class or function and its lines of code."""

    lines: int
    kind: str
    where: str


def code_lines(source: str) -> set[int]:
    """Line numbers holding code: not blank, not only a comment, not inside a docstring."""
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT):
            continue
        if tok.type in (tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines - docstring_lines(ast.parse(source))


def docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list) or not body:
            continue
        first = body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            if isinstance(first.value.value, str) and first.end_lineno is not None:
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def measure_source(source: str, name: str) -> Iterator[Measured]:
    code = code_lines(source)
    yield Measured(len(code), "module", name)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            span = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            yield Measured(len(code.intersection(span)), kind, f"{name}:{node.lineno} {node.name}")


def measure(paths: Iterable[Path]) -> list[Measured]:
    out: list[Measured] = []
    for path in paths:
        out.extend(measure_source(path.read_text(), str(path)))
    return out


def python_files(root: Path, packages: Iterable[str] = PACKAGES) -> list[Path]:
    return sorted(p for pkg in packages for p in (root / pkg).rglob("*.py"))


def over_limit(measured: Iterable[Measured]) -> list[Measured]:
    return sorted((m for m in measured if m.lines > LIMITS[m.kind]), reverse=True)


def report(measured: list[Measured], top: int = 5) -> str:
    lines = []
    for kind, limit in LIMITS.items():
        ranked = sorted((m for m in measured if m.kind == kind), reverse=True)
        over = sum(m.lines > limit for m in ranked)
        plural = "classes" if kind == "class" else f"{kind}s"
        lines.append(f"{plural}: {len(ranked)}, over {limit} lines of code: {over}")
        lines += [f"  {m.lines:4d}  {m.where}" for m in ranked[:top]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0]) if argv else Path(".")
    measured = measure(python_files(root))
    print(report(measured))
    broken = over_limit(measured)
    for m in broken:
        print(
            f"over the {m.kind} limit of {LIMITS[m.kind]}: {m.where} ({m.lines})", file=sys.stderr
        )
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
