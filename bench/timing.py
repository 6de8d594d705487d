"""Timing helpers: best of N runs (the least disturbed by the other tenants of the machine)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def gbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9
