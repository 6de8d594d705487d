"""Which workers are active: heard from (an update or a model request) within a timeout.

Synchronous rounds wait for every active worker; the timeout is what keeps
a dead worker from stalling a round forever. It must exceed the slowest
worker's time between messages (one fit), or that worker drops out of the
rounds it is still training for. Time is passed in, so this is pure.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping


class ActiveWorkers:
    """Last-heard times of workers; ``active`` are those heard from within ``timeout`` seconds.

    Times passed in must not go backwards (a monotonic or a virtual clock).
    """

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self._last: OrderedDict[str, float] = OrderedDict()  # least recently heard from first

    def seen(self, worker_id: str, now: float) -> None:
        self._last[worker_id] = now
        self._last.move_to_end(worker_id)

    def active(self, now: float) -> frozenset[str]:
        while self._last:
            worker_id, last = next(iter(self._last.items()))
            if now - last <= self.timeout:
                break
            del self._last[worker_id]
        return frozenset(self._last)

    def expires_at(self, worker_id: str) -> float | None:
        """When ``worker_id`` stops counting as active unless heard from again."""
        last = self._last.get(worker_id)
        return None if last is None else last + self.timeout

    def snapshot(self, now: float) -> dict[str, float]:
        """Seconds since each active worker was heard from, least recently heard first (for the
        checkpoint: a restarted aggregator keeps waiting for the workers of a half-filled round).
        """
        return {worker_id: now - last for worker_id, last in self._last.items()}

    def restore(self, ages: Mapping[str, float], now: float) -> None:
        """Take back a ``snapshot``; the time the aggregator was down is not counted against
        anyone, so a dead worker delays the first round after a restart by at most ``timeout``.
        """
        for worker_id, age in sorted(ages.items(), key=lambda item: -item[1]):
            self.seen(worker_id, now - min(max(float(age), 0.0), self.timeout))

    def forget(self, worker_id: str) -> None:
        """Not active until heard from again (it went silent in a round that waited for it)."""
        self._last.pop(worker_id, None)
