"""Stay attached to the broker through outages, for every service (one retry policy:
``broker.retry``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from broker.connection import AmqpSession
from broker.errors import BrokerError, BrokerUnavailable, ConnectionLost, NotFound
from broker.retry import RetryPolicy, retry

T = TypeVar("T")

#: What an outage looks like: the connection dropped, the broker went away for longer than one
#: connect's retries, or (for a worker that may not declare it) the topology is not there yet.
OUTAGES = (ConnectionLost, NotFound, BrokerUnavailable)


def serve_attached(
    session: AmqpSession,
    attach: Callable[[], None],
    serve: Callable[[], T],
    *,
    stop: threading.Event,
    backoff_max: float,
    on_outage: Callable[[BrokerError, float], None],
) -> T | None:
    """``attach`` then ``serve``; after an outage, close, back off (with jitter) and do both again.

    Returns what ``serve`` returned, or ``None`` once ``stop`` is set. A first
    failure to reach the broker at all is raised: a wrong URL or a broker that
    is not running is a configuration problem, not an outage to sit out.
    """
    attached = [False, False]  # ever attached; attached since the last outage

    def attach_and_serve() -> T:
        attach()
        attached[:] = [True, True]
        return serve()

    def transient(exc: Exception) -> bool:
        return isinstance(exc, OUTAGES) and (attached[0] or not isinstance(exc, BrokerUnavailable))

    def outage(exc: Exception, delay: float) -> None:
        if isinstance(exc, BrokerError):  # always: transient() admits only broker errors
            on_outage(exc, delay)
        session.close()

    def progressed() -> bool:
        was, attached[1] = attached[1], False
        return was

    if stop.is_set():
        return None
    return retry(
        attach_and_serve,
        RetryPolicy(attempts=None, backoff_max=backoff_max),
        transient=transient,
        on_retry=outage,
        wait=lambda delay: not stop.wait(delay) and not stop.is_set(),
        made_progress=progressed,
    )
