"""Stay attached to the broker through outages: one retry loop, in one place, for every service."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from broker.connection import AmqpSession, backoff_delay
from broker.errors import BrokerError, BrokerUnavailable, ConnectionLost, NotFound

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
    attempt, attached = 0, False
    while not stop.is_set():
        try:
            attach()
            attempt, attached = 0, True
            return serve()
        except OUTAGES as exc:
            if isinstance(exc, BrokerUnavailable) and not attached:
                raise
            delay = backoff_delay(attempt, backoff_max)
            attempt += 1
            on_outage(exc, delay)
            session.close()
            stop.wait(delay)
    return None
