"""The aggregator's clocks: monotonic for rates and deadlines, wall for reports, training time."""

from __future__ import annotations

import time


class RunClock:
    """Training seconds across restarts (``elapsed``), and the monotonic and wall clocks."""

    def __init__(self, elapsed_before: float = 0.0) -> None:
        self.started = time.monotonic()
        self.elapsed_before = elapsed_before

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def elapsed(self) -> float:
        return self.elapsed_before + (time.monotonic() - self.started)
