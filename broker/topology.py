"""Declare a federation's exchanges and queues. Every declaration is idempotent.

::

    workers --(update)--> [ns.inbox] --> ns.results   (quorum, bounded, DLX -> ns.dead)
            --(request)-> [ns.inbox] --> ns.requests  (short TTL)
    aggregator --(broadcast | worker.<id>)--> [ns.models] --> ns.models.<id>  (exclusive, max-length 1)
    aggregator / broker --(rejected, poison)--> [ns.dead] --> ns.dead
    aggregator --(status)--> [ns.models] --> ns.status  (max-length 1: the latest status report)
    worker: ns.partition.<i>  (exclusive, unbound: a claim on data partition i)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.connection import AmqpSession, translated
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

    @classmethod
    def from_settings(cls, settings: BrokerSettings) -> QueueLimits:
        """The results-queue bounds an operator configured (``FEDMQ_RESULTS_MAX_LENGTH`` ...)."""
        return cls(
            results_max_length=settings.results_max_length,
            results_max_bytes=settings.results_max_bytes,
            delivery_limit=settings.delivery_limit,
        )


def results_queue_arguments(names: Names, limits: QueueLimits) -> dict[str, Any]:
    """Quorum queue: replicated, delivery-limited (poison messages), bounded with publisher back-off."""
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": names.dead_exchange,
        "x-delivery-limit": limits.delivery_limit,
        "x-max-length": limits.results_max_length,
        "x-max-length-bytes": limits.results_max_bytes,
        "x-overflow": "reject-publish",
    }


def worker_queue_arguments() -> dict[str, Any]:
    """Latest-value queue: only the newest model waits; older ones are dropped from the head."""
    return {"x-queue-type": "classic", "x-max-length": 1, "x-overflow": "drop-head"}


def declare_topology(session: AmqpSession, names: Names, limits: QueueLimits | None = None) -> None:
    """Declare the federation's shared resources, bounded as the session's settings say.

    The results queue's arguments must be the same for every declarer: a
    different ``x-max-length`` is refused (``TopologyMismatch``).
    """
    limits = limits or QueueLimits.from_settings(session.settings)
    ch = session.channel
    with translated("declare topology"):
        ch.exchange_declare(names.models_exchange, "direct", durable=True)
        ch.exchange_declare(names.inbox_exchange, "direct", durable=True)
        ch.exchange_declare(names.dead_exchange, "fanout", durable=True)
        ch.queue_declare(
            names.dead_queue,
            durable=True,
            arguments={
                "x-max-length": limits.dead_max_length,
                "x-max-length-bytes": limits.dead_max_bytes,
            },
        )
        ch.queue_bind(names.dead_queue, names.dead_exchange)
        ch.queue_declare(
            names.results_queue, durable=True, arguments=results_queue_arguments(names, limits)
        )
        ch.queue_bind(names.results_queue, names.inbox_exchange, routing_key=UPDATE_KEY)
        ch.queue_declare(
            names.requests_queue,
            durable=True,
            arguments={"x-message-ttl": limits.request_ttl_ms, "x-max-length": 1000},
        )
        ch.queue_bind(names.requests_queue, names.inbox_exchange, routing_key=REQUEST_KEY)


def declare_status_queue(session: AmqpSession, names: Names) -> None:
    """The queue ``fedmq status`` reads (without consuming) the aggregator's latest report from."""
    ch = session.channel
    with translated(f"declare {names.status_queue}"):
        # Latest-value, like a worker's model queue; durable because 4.x deprecates transient shared queues.
        ch.exchange_declare(names.status_exchange, "fanout", durable=True)
        ch.queue_declare(names.status_queue, durable=True, arguments=worker_queue_arguments())
        ch.queue_bind(names.status_queue, names.status_exchange)


def declare_worker_queue(session: AmqpSession, names: Names, worker_id: str) -> str:
    """Declare and bind a worker's own model queue; it lives as long as the worker's connection."""
    queue = names.worker_queue(worker_id)
    ch = session.channel
    with translated(f"declare {queue}"):
        ch.exchange_declare(names.models_exchange, "direct", durable=True, passive=True)
        ch.queue_declare(
            queue, exclusive=True, auto_delete=True, arguments=worker_queue_arguments()
        )
        ch.queue_bind(queue, names.models_exchange, routing_key=BROADCAST_KEY)
        ch.queue_bind(queue, names.models_exchange, routing_key=worker_key(worker_id))
    return queue


def delete_topology(session: AmqpSession, names: Names) -> None:
    """Remove a federation's shared queues and exchanges (tests, `fedmq demo` cleanup)."""
    ch = session.channel
    with translated("delete topology"):
        for queue in names.queues():
            ch.queue_delete(queue)
        for exchange in names.exchanges():
            ch.exchange_delete(exchange)
