"""One retry policy for everything that talks to the broker: exponential backoff with jitter.

``AmqpSession.open`` (a bounded number of connects) and ``serve_attached``
(a service riding out outages for as long as it runs) both go through
``retry``; the worker's publish retries take their delays from ``backoff_delay``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

BACKOFF_BASE = 0.25
_JITTER = random.Random()


def backoff_delay(attempt: int, maximum: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter in its upper half: attempt 0 waits ~BACKOFF_BASE."""
    ceiling = min(maximum, BACKOFF_BASE * (2**attempt))
    return float(ceiling * (rng or _JITTER).uniform(0.5, 1.0))


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try (``attempts=None``: until stopped), how long to back off at most."""

    attempts: int | None
    backoff_max: float


def retry(
    action: Callable[[], T],
    policy: RetryPolicy,
    *,
    transient: Callable[[Exception], bool],
    on_retry: Callable[[Exception, float], None],
    wait: Callable[[float], bool],
    made_progress: Callable[[], bool] = lambda: False,
) -> T | None:
    """Run ``action`` until it returns; after a ``transient`` failure back off and try again.

    ``wait(delay)`` sleeps and returns False when the caller wants to stop, which
    ends the loop with ``None``. A failure that is not transient, or the last
    allowed attempt's failure, is raised. When ``made_progress()`` says the
    failed attempt got somewhere (a service attached, then lost the broker),
    the backoff starts over.
    """
    attempt = 0
    while True:
        try:
            return action()
        except Exception as exc:
            attempt = 1 if made_progress() else attempt + 1
            exhausted = policy.attempts is not None and attempt >= policy.attempts
            if exhausted or not transient(exc):
                raise
            delay = backoff_delay(attempt - 1, policy.backoff_max)
            on_retry(exc, delay)
            if not wait(delay):
                return None
