"""Render benchmark rows as a markdown table."""

from __future__ import annotations

from collections.abc import Iterable

from bench import Row

HEADER = ("benchmark", "case", "fedmq", "baseline", "ratio", "floor", "met", "note")


def _met(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "**no**")


def markdown(rows: Iterable[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}x"
        cells = (r.benchmark, r.case, r.measured, r.baseline, ratio, r.floor, _met(r.met), r.note)
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)
