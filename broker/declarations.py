"""A federation's exchanges, queues and bindings as data, for whoever declares them.

The same list is declared three ways: over AMQP by a user allowed to
configure (``broker.topology``: the ``guest`` demo and the tests), through the
management API by the provisioner (``fedmq broker init | add-worker``, so
that the runtime aggregator and workers need no configure permission at all),
and in a RabbitMQ definitions file (docker compose). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.names import (
    BROADCAST_KEY,
    FINAL_KEY,
    REQUEST_KEY,
    SECURE_KEY,
    UPDATE_KEY,
    Names,
    worker_key,
)


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


@dataclass(frozen=True)
class Exchange:
    name: str
    kind: str


@dataclass(frozen=True)
class Queue:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Binding:
    queue: str
    exchange: str
    routing_key: str = ""


Declaration = Exchange | Queue | Binding


#: The results queue's argument that makes it deliver to one consumer at a time.
SINGLE_ACTIVE = "x-single-active-consumer"


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
            # One aggregator receives updates at a time; the broker hands the queue to the next
            # consumer (a standby) the moment the active one's connection dies.
            SINGLE_ACTIVE: True,
        },
    )


def worker_queue_arguments(slots: int = 1) -> dict[str, Any]:
    """Latest-value queue: only the newest model (``slots``: its chunks) waits; older messages are
    dropped from the head.
    """
    return {"x-queue-type": "classic", "x-max-length": slots, "x-overflow": "drop-head"}


def shared_topology(names: Names, limits: QueueLimits) -> list[Declaration]:
    """Everything but the workers' queues, in an order that declares before it binds."""
    exchanges: list[Declaration] = [Exchange(n, k) for n, k in names.exchange_kinds().items()]
    # On a cluster these are quorum queues too (``replicated``): a classic queue lives on one
    # member, and while that member is down declaring it fails, which would stop the federation.
    dead_bounds = replicated(
        limits,
        {"x-max-length": limits.dead_max_length, "x-max-length-bytes": limits.dead_max_bytes},
    )
    requests_bounds = replicated(
        limits, {"x-message-ttl": limits.request_ttl_ms, "x-max-length": 1000}
    )
    return exchanges + [
        Queue(names.dead_queue, dead_bounds),
        Binding(names.dead_queue, names.dead_exchange),
        Queue(names.results_queue, results_queue_arguments(names, limits)),
        Binding(names.results_queue, names.inbox_exchange, UPDATE_KEY),
        Queue(names.requests_queue, requests_bounds),
        Binding(names.requests_queue, names.inbox_exchange, REQUEST_KEY),
        # Secure aggregation's protocol messages: bounded and dead-lettered like the results.
        Queue(names.secure_queue, results_queue_arguments(names, limits)),
        Binding(names.secure_queue, names.inbox_exchange, SECURE_KEY),
        # The final model, for workers that attach after the end: the aggregator empties it when a
        # run starts and fills it at the end; nobody consumes it (workers peek).
        Queue(names.final_queue, replicated(limits, {})),
        Binding(names.final_queue, names.models_exchange, FINAL_KEY),
        *status_topology(names, limits),
    ]


def status_topology(names: Names, limits: QueueLimits) -> list[Declaration]:
    """Latest-value, like a worker's model queue: what ``fedmq status`` reads without consuming."""
    return [
        Queue(names.status_queue, replicated(limits, worker_queue_arguments())),
        Binding(names.status_queue, names.status_exchange),
    ]


def worker_topology(
    names: Names, worker_id: str, limits: QueueLimits | None = None
) -> list[Declaration]:
    """A provisioned worker's model queue (durable: it outlives the worker's connections) and its
    two bindings; the worker itself may only read it. On a cluster it is replicated like the
    shared queues, so it outlives the member it was declared on.
    """
    queue = names.worker_queue(worker_id)
    return [
        Queue(queue, replicated(limits or QueueLimits(), worker_queue_arguments())),
        Binding(queue, names.models_exchange, BROADCAST_KEY),
        Binding(queue, names.models_exchange, worker_key(worker_id)),
    ]


def as_definitions(declarations: list[Declaration], vhost: str) -> dict[str, list[dict[str, Any]]]:
    """The ``exchanges``, ``queues`` and ``bindings`` of a RabbitMQ definitions file."""
    out: dict[str, list[dict[str, Any]]] = {"exchanges": [], "queues": [], "bindings": []}
    for d in declarations:
        if isinstance(d, Exchange):
            out["exchanges"].append(
                {"name": d.name, "vhost": vhost, "type": d.kind, "durable": True}
                | {"auto_delete": False, "internal": False, "arguments": {}}
            )
        elif isinstance(d, Queue):
            out["queues"].append(
                {"name": d.name, "vhost": vhost, "durable": True, "auto_delete": False}
                | {"arguments": d.arguments}
            )
        else:
            out["bindings"].append(
                {"source": d.exchange, "vhost": vhost, "destination": d.queue}
                | {"destination_type": "queue", "routing_key": d.routing_key, "arguments": {}}
            )
    return out
