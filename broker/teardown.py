"""Remove a federation from the broker: its shared queues and exchanges, never under its aggregator.

The aggregator is the one consumer of the results and requests queues, so a consumer
there means a federation is running: deleting its queues would drop confirmed updates
it has not applied and strand its workers. ``delete_namespace`` refuses then unless
forced. In open mode per-worker model queues and partition claims are exclusive: the
broker deletes each when its worker's connection closes, and no other connection may
delete them. A provisioned worker's durable model queue goes with ``remove_worker``
(``broker.provision``); AMQP cannot list queues, so this module does not guess names.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.connection import AmqpSession
from broker.errors import BrokerError, NotFound
from broker.names import Names


class NamespaceInUse(BrokerError):
    """The federation's aggregator is attached (it consumes the results or requests queue)."""


@dataclass(frozen=True)
class Removed:
    """What ``delete_namespace`` found and deleted."""

    queues: tuple[str, ...]
    exchanges: tuple[str, ...]
    #: Messages that were waiting in the deleted queues (and are gone with them).
    messages: int


def _queue_counts(session: AmqpSession, queue: str) -> tuple[int, int] | None:
    """(ready messages, consumers), or None when the queue does not exist."""
    try:
        return session.queue_counts(queue)
    except NotFound:
        session.reset_channel()  # a 404 closes the channel
        return None


def _exchange_exists(session: AmqpSession, exchange: str) -> bool:
    try:
        session.declare_exchange(exchange, "direct", passive=True)
        return True
    except NotFound:
        session.reset_channel()
        return False


def aggregator_consumers(session: AmqpSession, names: Names) -> dict[str, int]:
    """Consumers on the queues only the aggregator reads, for those that have any."""
    found = {q: _queue_counts(session, q) for q in (names.results_queue, names.requests_queue)}
    return {q: counts[1] for q, counts in found.items() if counts is not None and counts[1]}


def delete_namespace(session: AmqpSession, names: Names, *, force: bool = False) -> Removed:
    """Delete the federation's shared queues and exchanges; ``NamespaceInUse`` while its
    aggregator is attached, unless ``force``.
    """
    attached = aggregator_consumers(session, names)
    if attached and not force:
        held = ", ".join(f"{q} has {n} consumer(s)" for q, n in attached.items())
        raise NamespaceInUse(
            f"namespace {names.namespace!r} is in use ({held}): stop its aggregator first, "
            "or pass --force"
        )
    queues = {q: _queue_counts(session, q) for q in names.queues()}
    existing = {q: counts[0] for q, counts in queues.items() if counts is not None}
    exchanges = tuple(e for e in names.exchanges() if _exchange_exists(session, e))
    for queue in existing:
        session.delete_queue(queue)
    for exchange in exchanges:
        session.delete_exchange(exchange)
    return Removed(tuple(existing), exchanges, sum(existing.values()))
