"""Rates and summaries for progress lines and the metrics log (pure; time is passed in)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


class RateMeter:
    """Events per second over a sliding window of ``window`` seconds."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._times: deque[float] = deque()

    def mark(self, now: float, count: int = 1) -> None:
        for _ in range(count):
            self._times.append(now)
        self._trim(now)

    def rate(self, now: float) -> float:
        self._trim(now)
        if not self._times:
            return 0.0
        span = max(now - self._times[0], 1e-9)
        return len(self._times) / max(span, min(self.window, 1.0))

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()


@dataclass
class WorkerSeen:
    """What the aggregator knows about one worker, from its applied updates."""

    updates: int = 0
    staleness_sum: int = 0
    train_seconds_sum: float = 0.0
    last_seen: float = 0.0

    @property
    def mean_staleness(self) -> float:
        return self.staleness_sum / self.updates if self.updates else 0.0

    @property
    def mean_train_seconds(self) -> float:
        return self.train_seconds_sum / self.updates if self.updates else 0.0

    def summary(self) -> dict[str, float]:
        """For the run summary."""
        return {
            "updates": self.updates,
            "mean_staleness": round(self.mean_staleness, 3),
            "mean_train_seconds": round(self.mean_train_seconds, 4),
        }


@dataclass
class StalenessStats:
    """Running histogram of applied updates' staleness."""

    histogram: dict[int, int] = field(default_factory=dict)

    def add(self, staleness: int) -> None:
        self.histogram[staleness] = self.histogram.get(staleness, 0) + 1

    @property
    def count(self) -> int:
        return sum(self.histogram.values())

    @property
    def mean(self) -> float:
        n = self.count
        return sum(k * v for k, v in self.histogram.items()) / n if n else 0.0

    @property
    def maximum(self) -> int:
        return max(self.histogram, default=0)

    def positive_share(self) -> float:
        """Fraction of applied updates that were stale (staleness > 0)."""
        n = self.count
        return sum(v for k, v in self.histogram.items() if k > 0) / n if n else 0.0
