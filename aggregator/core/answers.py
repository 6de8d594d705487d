"""How often one worker may be sent the current model on request. Time is passed in: pure.

Every answer is a full model; unlimited, 5,000 requests earned 1,565 full
models (an amplification of the requester's bandwidth by the model's size).
A worker needs one answer when it attaches; broadcasts bring every later
version anyway, and a worker that got nothing asks again after
``worker.inbox.REQUEST_EVERY`` (5 s), which is longer than the interval here.
"""

from __future__ import annotations

from collections import OrderedDict

#: At most one answer per worker per this many seconds (below the worker's 5 s retry).
MIN_ANSWER_INTERVAL = 2.0


class AnswerLimiter:
    """At most one answer per worker per ``interval`` seconds; remembers only recent answers."""

    def __init__(self, interval: float = MIN_ANSWER_INTERVAL) -> None:
        if interval < 0:
            raise ValueError("interval must not be negative")
        self.interval = interval
        self._last: OrderedDict[str, float] = OrderedDict()  # oldest answer first

    def allow(self, worker_id: str, now: float) -> bool:
        """Whether ``worker_id`` may be answered at ``now`` (and, if so, that it was)."""
        while self._last and now - next(iter(self._last.values())) >= self.interval:
            self._last.popitem(last=False)
        if worker_id in self._last:
            return False
        self._last[worker_id] = now
        return True

    def __len__(self) -> int:
        return len(self._last)
