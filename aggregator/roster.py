"""Which workers are active: heard from (an update or a model request) within a timeout.

Synchronous rounds wait for every active worker; the timeout is what keeps
a dead worker from stalling a round forever. It must exceed the slowest
worker's time between messages (one fit), or that worker drops out of the
rounds it is still training for. Time is passed in, so this is pure.
"""

from __future__ import annotations


class Roster:
    """Last-heard times of workers; ``active`` are those heard from within ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self._last: dict[str, float] = {}

    def seen(self, worker_id: str, now: float) -> None:
        self._last[worker_id] = now

    def active(self, now: float) -> frozenset[str]:
        expired = [w for w, t in self._last.items() if now - t > self.timeout]
        for worker_id in expired:
            del self._last[worker_id]
        return frozenset(self._last)

    def expires_at(self, worker_id: str) -> float | None:
        """When ``worker_id`` stops counting as active unless heard from again."""
        last = self._last.get(worker_id)
        return None if last is None else last + self.timeout
