"""The code-shape check: what counts as a line of code, and which limits it enforces."""

from __future__ import annotations

from pathlib import Path

from harness.shape import LIMITS, Measured, measure, measure_source, over_limit, python_files

ROOT = Path(__file__).resolve().parents[2]

SOURCE = '''"""Module docstring: not code."""

# a comment: not code
def f(x):
    """Function docstring,
    over two lines: not code."""
    y = (x +
         1)  # a trailing comment does not hide code

    return y


class C:
    value = 1
'''


def test_docstrings_comments_and_blank_lines_are_not_code() -> None:
    measured = {m.where.split(" ")[-1]: m.lines for m in measure_source(SOURCE, "m.py")}

    assert measured == {"m.py": 6, "f": 4, "C": 2}


def test_a_function_one_line_over_its_limit_is_reported() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(LIMITS["function"] - 1))
    at_limit = measure_source(f"def f():\n{body}", "at.py")
    over = measure_source(f"def f():\n{body}    extra = 0\n", "over.py")

    assert [m.where for m in over_limit(at_limit)] == []
    assert [m.where for m in over_limit(over)] == ["over.py:1 f"]


def test_the_tree_is_within_every_limit() -> None:
    broken: list[Measured] = over_limit(measure(python_files(ROOT)))

    assert broken == []
