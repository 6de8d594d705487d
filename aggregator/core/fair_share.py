"""Influence per worker, not per update: a fast worker's updates count for less in FedAsync.

FedAsync mixes every update in as it arrives, so a worker three times as fast
as the others moves the model three times as often: an attacker's share of the
model is its share of the *arrivals*. ``ArrivalShare`` scales a worker's mixing
weight by (median share / its share) over the recent applied arrivals, capped
at 1, so every worker's total influence per unit of time is at most a typical
worker's (FedBuff's robust buffer bounds the same thing with a per-buffer share).
"""

from __future__ import annotations

from collections import Counter, deque

import numpy as np

#: Recent applied arrivals remembered.
WINDOW = 200


class ArrivalShare:
    """Recent applied arrivals per worker; ``record`` gives the factor its weight is scaled by."""

    def __init__(self, window: int = WINDOW) -> None:
        if window < 1:
            raise ValueError("the arrival window must hold at least one arrival")
        self._arrivals: deque[str] = deque(maxlen=window)
        self._counts: Counter[str] = Counter()

    def record(self, worker_id: str) -> float:
        """Count an applied arrival from ``worker_id``; its weight factor in (0, 1]."""
        if len(self._arrivals) == self._arrivals.maxlen:
            oldest = self._arrivals[0]
            self._counts[oldest] -= 1
            if not self._counts[oldest]:
                del self._counts[oldest]
        self._arrivals.append(worker_id)
        self._counts[worker_id] += 1
        median = float(np.median(np.fromiter(self._counts.values(), float)))
        return min(1.0, median / self._counts[worker_id])

    def state(self) -> list[str]:
        return list(self._arrivals)

    def restore(self, arrivals: list[str]) -> None:
        self._arrivals.clear()
        self._counts.clear()
        for worker in arrivals:
            self.record(str(worker))
