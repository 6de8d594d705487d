"""Declare a federation's exchanges and queues. Every declaration is idempotent.

::

    workers --(update)--> [ns.inbox] --> ns.results   (quorum, bounded, DLX -> ns.dead)
            --(request)-> [ns.inbox] --> ns.requests  (short TTL)
    aggregator --(broadcast | worker.<id>)--> [ns.models] --> ns.models.<id>  (exclusive, max-length
    1)
    aggregator / broker --(rejected, poison)--> [ns.dead] --> ns.dead
    aggregator --(status)--> [ns.models] --> ns.status  (max-length 1: the latest status report)
    worker: ns.partition.<i>  (exclusive, unbound: a claim on data partition i)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from broker.connection import AmqpSession
from broker.names import BROADCAST_KEY, REQUEST_KEY, UPDATE_KEY, Names, worker_key
from broker.settings import BrokerSettings


@dataclass(frozen=True)
class QueueLimits:
    """Bounds on the federation's queues (see docs/reliability.md, backpressure)."""

    results_max_length: int = 10_000
    results_max_bytes: int = 2 << 30
    delivery_limit: int = 5
    dead_max_length: int = 10_000
    dead_max_bytes: int = 512 << 20
    request_ttl_ms: int = 60_000
    #: Replicas per quorum queue on a cluster; ``None``: one broker (the broker's default).
    quorum_group_size: int | None = None

    @classmethod
    def from_settings(cls, settings: BrokerSettings) -> QueueLimits:
        """The results-queue bounds an operator configured (``FEDMQ_RESULTS_MAX_LENGTH`` ...)."""
        return cls(
            results_max_length=settings.results_max_length,
            results_max_bytes=settings.results_max_bytes,
            delivery_limit=settings.delivery_limit,
            quorum_group_size=settings.quorum_group_size,
        )


def replicated(limits: QueueLimits, arguments: dict[str, Any]) -> dict[str, Any]:
    """A shared queue's arguments on a cluster: a quorum queue with a replica on
    ``quorum_group_size`` members, so it outlives any one node. Unchanged on one broker."""
    if limits.quorum_group_size is None:
        return arguments
    return {
        **arguments,
        "x-queue-type": "quorum",
        "x-quorum-initial-group-size": limits.quorum_group_size,
    }


def results_queue_arguments(names: Names, limits: QueueLimits) -> dict[str, Any]:
    """Quorum queue: replicated, delivery-limited (poison messages), bounded with publisher back-
    off.
    """
    return replicated(
        limits,
        {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": names.dead_exchange,
            "x-delivery-limit": limits.delivery_limit,
            "x-max-length": limits.results_max_length,
            "x-max-length-bytes": limits.results_max_bytes,
            "x-overflow": "reject-publish",
        },
    )


def worker_queue_arguments() -> dict[str, Any]:
    """Latest-value queue: only the newest model waits; older ones are dropped from the head."""
    return {"x-queue-type": "classic", "x-max-length": 1, "x-overflow": "drop-head"}


def declare_topology(session: AmqpSession, names: Names, limits: QueueLimits | None = None) -> None:
    """Declare the federation's shared resources, bounded as the session's settings say.

    The results queue's arguments must be the same for every declarer: a
    different ``x-max-length`` is refused (``TopologyMismatch``).
    """
    limits = limits or QueueLimits.from_settings(session.settings)
    session.declare_exchange(names.models_exchange, "direct")
    session.declare_exchange(names.inbox_exchange, "direct")
    session.declare_exchange(names.dead_exchange, "fanout")
    session.declare_queue(
        names.dead_queue,
        durable=True,
        arguments=replicated(
            limits,
            {"x-max-length": limits.dead_max_length, "x-max-length-bytes": limits.dead_max_bytes},
        ),
    )
    session.bind_queue(names.dead_queue, names.dead_exchange)
    declare_results_queue(session, names, names.results_queue, limits)
    session.bind_queue(names.results_queue, names.inbox_exchange, UPDATE_KEY)
    session.declare_queue(
        names.requests_queue,
        durable=True,
        arguments=replicated(
            limits, {"x-message-ttl": limits.request_ttl_ms, "x-max-length": 1000}
        ),
    )
    session.bind_queue(names.requests_queue, names.inbox_exchange, REQUEST_KEY)


def declare_results_queue(
    session: AmqpSession, names: Names, queue: str, limits: QueueLimits
) -> None:
    """A results queue (the federation's, or a benchmark's stand-in with the same arguments)."""
    session.declare_queue(queue, durable=True, arguments=results_queue_arguments(names, limits))


def declare_status_queue(session: AmqpSession, names: Names) -> None:
    """The queue ``fedmq status`` reads (without consuming) the aggregator's latest report from."""
    # Latest-value, like a worker's model queue; durable because 4.x deprecates transient shared
    # queues.
    session.declare_exchange(names.status_exchange, "fanout")
    limits = QueueLimits.from_settings(session.settings)
    session.declare_queue(
        names.status_queue, durable=True, arguments=replicated(limits, worker_queue_arguments())
    )
    session.bind_queue(names.status_queue, names.status_exchange)


def declare_worker_queue(session: AmqpSession, names: Names, worker_id: str) -> str:
    """Declare and bind a worker's own model queue; it lives as long as the worker's connection."""
    queue = names.worker_queue(worker_id)
    session.declare_exchange(names.models_exchange, "direct", passive=True)
    session.declare_queue(
        queue, exclusive=True, auto_delete=True, arguments=worker_queue_arguments()
    )
    session.bind_queue(queue, names.models_exchange, BROADCAST_KEY)
    session.bind_queue(queue, names.models_exchange, worker_key(worker_id))
    return queue


def declare_listener(session: AmqpSession, queue: str, exchange: str) -> None:
    """A latest-value queue on ``exchange``'s broadcast key (a benchmark's stand-in worker)."""
    session.declare_queue(queue, arguments=worker_queue_arguments())
    session.bind_queue(queue, exchange, BROADCAST_KEY)


def declare_partition_claim(session: AmqpSession, names: Names, index: int) -> None:
    """Claim data partition ``index`` for this connection; ``ResourceLocked`` if another holds it.

    Unbound and ``x-max-length 0``: the queue is a lock, never a mailbox.
    """
    session.declare_queue(
        names.partition_claim(index),
        exclusive=True,
        auto_delete=True,
        arguments={"x-max-length": 0},
    )


def delete_topology(session: AmqpSession, names: Names) -> None:
    """Remove a federation's shared queues and exchanges (tests, `fedmq demo` cleanup)."""
    delete_resources(session, queues=names.queues(), exchanges=names.exchanges())


def delete_resources(
    session: AmqpSession, *, queues: Iterable[str] = (), exchanges: Iterable[str] = ()
) -> None:
    for queue in queues:
        session.delete_queue(queue)
    for exchange in exchanges:
        session.delete_exchange(exchange)
