"""The exact buffer's cost: an edge's per-update work (fixed-point terms, integer sum) against
FedBuff's float64 accumulation of the same deltas, in one process, for three model sizes.

This is the core's compute only (no broker, no decoding): what one edge can add per second
at most, and what exactness costs over the float buffer a single aggregator keeps.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from aggregator.core.arithmetic import accumulate_into
from aggregator.core.partial import Partial, fixed_terms
from bench import Context, Row
from bench.timing import best_seconds

CASES = [("40 KB", 10_000, 200), ("4 MB", 1_000_000, 20), ("40 MB", 10_000_000, 4)]
QUICK_CASES = [("40 KB", 10_000, 20), ("4 MB", 1_000_000, 3)]


def deltas(floats: int, count: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"w": rng.normal(0, 0.01, floats).astype(np.float32)} for _ in range(count)]


def exact(updates: list[dict[str, np.ndarray]]) -> None:
    Partial.of((f"u{i}", fixed_terms(d, 0.7 * 100), 100) for i, d in enumerate(updates))


def floating(updates: list[dict[str, np.ndarray]]) -> None:
    acc = {"w": np.zeros(updates[0]["w"].shape, np.float64)}
    for d in updates:
        accumulate_into(acc, d, 0.7 * 100)


def run(ctx: Context) -> Iterable[Row]:
    for label, floats, count in QUICK_CASES if ctx.quick else CASES:
        updates = deltas(floats, count)
        ours = count / best_seconds(lambda u=updates: exact(u), 3)  # type: ignore[misc]
        theirs = count / best_seconds(lambda u=updates: floating(u), 3)  # type: ignore[misc]
        yield Row(
            "edge core: exact buffer",
            f"{label} model, add one update",
            f"{ours:.1f} upd/s ({ours * floats * 4 / 1e6:.0f} MB/s)",
            f"{theirs:.1f} upd/s (float64 FedBuff buffer)",
            ours / theirs,
            note=f"{count} updates, best of 3, one process",
        )
