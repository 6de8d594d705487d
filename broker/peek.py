"""Look at the messages waiting in a queue without taking them away (audits, tests)."""

from __future__ import annotations

import time

from broker.connection import AmqpSession, Delivery
from broker.settings import BrokerSettings

PEEK_POLL_SECONDS = 0.05


def peek(settings: BrokerSettings, queue: str, *, timeout: float = 20.0) -> list[Delivery]:
    """The ready messages of ``queue``, left where they are.

    They are received without acknowledgement and go back to the queue when
    the connection closes. On a quorum queue that return counts as one
    delivery towards ``x-delivery-limit``; peek only while nothing else
    consumes, or a consumer takes some of the messages first.
    """
    with AmqpSession(settings, name="fedmq-peek") as session:
        ready, _ = session.queue_counts(queue)
        got: list[Delivery] = []
        if ready:
            session.consume(queue, got.append)
            deadline = time.monotonic() + timeout
            while len(got) < ready and time.monotonic() < deadline:
                session.process_events(PEEK_POLL_SECONDS)
        return got
