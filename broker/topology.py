"""Declare a federation's exchanges and queues. Every declaration is idempotent.

::

    workers --(update)--> [ns.inbox] --> ns.results   (quorum, bounded, DLX -> ns.dead)
            --(request)-> [ns.inbox] --> ns.requests  (short TTL)
    aggregator --(broadcast | worker.<id>)--> [ns.models] --> ns.models.<id>  (exclusive, max-length
    1)
    aggregator / broker --(rejected, poison)--> [ns.dead] --> ns.dead
    aggregator --(status)--> [ns.status] --> ns.status  (max-length 1: the latest status report)
    worker: ns.partition.<i>  (exclusive, unbound: a claim on data partition i; open mode only)

What is declared is data (``broker.declarations``); here it is declared over
AMQP, by a user allowed to configure. Provisioned users are not
(``broker.permissions``): ``fedmq broker init | add-worker`` declared it all,
and ``ensure_topology`` / ``attach_worker_queue`` only look it up.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.connection import AmqpSession
from broker.declarations import (
    SINGLE_ACTIVE,
    Declaration,
    Exchange,
    Queue,
    QueueLimits,
    results_queue_arguments,
    shared_topology,
    status_topology,
    worker_queue_arguments,
)
from broker.errors import AccessRefused, NotFound, TopologyMismatch
from broker.names import BROADCAST_KEY, Names, worker_key
from broker.settings import BrokerSettings

__all__ = ["QueueLimits", "declare_topology", "ensure_topology", "verify_topology"]


def limits_from_settings(settings: BrokerSettings) -> QueueLimits:
    """The results-queue bounds an operator configured (``FEDMQ_RESULTS_MAX_LENGTH`` ...)."""
    return QueueLimits(
        results_max_length=settings.results_max_length,
        results_max_bytes=settings.results_max_bytes,
        delivery_limit=settings.delivery_limit,
        quorum_group_size=settings.quorum_group_size,
    )


def declare(session: AmqpSession, declarations: Iterable[Declaration]) -> bool:
    """Declare each exchange, durable queue and binding over AMQP (needs configure permission).

    False if a queue meant to have a single active consumer predates that rule (``declare_queue``).
    """
    single_active = True
    for d in declarations:
        if isinstance(d, Exchange):
            session.declare_exchange(d.name, d.kind)
        elif isinstance(d, Queue):
            single_active = declare_queue(session, d) and single_active
        else:
            session.bind_queue(d.queue, d.exchange, d.routing_key)
    return single_active


def declare_queue(session: AmqpSession, queue: Queue) -> bool:
    """Declare a durable queue; one from before single-active-consumer is used as it is (False).

    A queue's arguments cannot change once it exists (PRECONDITION_FAILED): a
    results queue declared by an older fedmq keeps delivering to every
    consumer until an operator replaces it (docs/reliability.md). Any other
    difference is still refused (``TopologyMismatch``).
    """
    try:
        session.declare_queue(queue.name, durable=True, arguments=queue.arguments)
        return True
    except TopologyMismatch:
        if SINGLE_ACTIVE not in queue.arguments:
            raise
        session.reset_channel()  # the 406 closed the channel
    legacy = {k: v for k, v in queue.arguments.items() if k != SINGLE_ACTIVE}
    session.declare_queue(queue.name, durable=True, arguments=legacy)
    return False


def declare_topology(session: AmqpSession, names: Names, limits: QueueLimits | None = None) -> bool:
    """Declare the federation's shared resources, bounded as the session's settings say.

    The results queue's arguments must be the same for every declarer: a
    different ``x-max-length`` is refused (``TopologyMismatch``). Returns
    whether the results queue has a single active consumer (``declare_queue``).
    """
    limits = limits or limits_from_settings(session.settings)
    return declare(session, shared_topology(names, limits))


def declare_results_queue(
    session: AmqpSession, names: Names, queue: str, limits: QueueLimits
) -> bool:
    """A results queue (the federation's, or a benchmark's stand-in with the same arguments)."""
    return declare_queue(session, Queue(queue, results_queue_arguments(names, limits)))


def declare_status_queue(session: AmqpSession, names: Names) -> None:
    """The queue ``fedmq status`` reads (without consuming); part of ``declare_topology`` too."""
    limits = limits_from_settings(session.settings)
    declare(session, [Exchange(names.status_exchange, "fanout"), *status_topology(names, limits)])


def declare_worker_queue(
    session: AmqpSession, names: Names, worker_id: str, *, slots: int = 1
) -> str:
    """Declare and bind a worker's own model queue; it lives as long as the worker's connection.

    ``slots``: messages it keeps, newest first: 1, or a chunked model's chunk count.
    """
    queue = names.worker_queue(worker_id)
    session.declare_exchange(names.models_exchange, "direct", passive=True)
    session.declare_queue(
        queue, exclusive=True, auto_delete=True, arguments=worker_queue_arguments(slots)
    )
    session.bind_queue(queue, names.models_exchange, BROADCAST_KEY)
    session.bind_queue(queue, names.models_exchange, worker_key(worker_id))
    return queue


def attach_worker_queue(
    session: AmqpSession, names: Names, worker_id: str, *, slots: int = 1
) -> str:
    """The worker's model queue: the one provisioned for it, else (open mode) one of its own.

    A provisioned worker may not configure anything (``broker.permissions``):
    ``fedmq broker add-worker`` declared its queue and bound it, and the
    worker only reads it. Without provisioning (``guest`` on a laptop) the
    worker declares an exclusive queue, as before.
    """
    try:
        session.declare_queue(names.worker_queue(worker_id), passive=True)
    except NotFound:
        session.reset_channel()  # 404 closed the channel
        return declare_worker_queue(session, names, worker_id, slots=slots)
    return names.worker_queue(worker_id)


def verify_topology(session: AmqpSession, names: Names) -> None:
    """Check (passively: needs no permission) that the federation's shared resources exist.

    ``NotFound`` if one is missing: ``fedmq broker init`` (or an aggregator
    allowed to configure) has not declared them yet.
    """
    for exchange, kind in names.exchange_kinds().items():
        session.declare_exchange(exchange, kind, passive=True)
    for queue in names.queues():
        session.declare_queue(queue, passive=True)


def ensure_topology(session: AmqpSession, names: Names, limits: QueueLimits | None = None) -> bool:
    """Declare the shared topology where allowed; where not (provisioned users), check it exists.

    Returns ``declare_topology``'s verdict on the results queue; a passive check
    cannot see arguments, so there it trusts the provisioner (same declarations).
    """
    try:
        return declare_topology(session, names, limits)
    except AccessRefused:
        # A provisioned user may not configure shared resources: the provisioner declared them (or
        # NotFound says it has not yet).
        session.reset_channel()
        verify_topology(session, names)
        return True


def declare_listener(session: AmqpSession, queue: str, exchange: str) -> None:
    """A latest-value queue on ``exchange``'s broadcast key (a benchmark's stand-in worker)."""
    session.declare_queue(queue, arguments=worker_queue_arguments())
    session.bind_queue(queue, exchange, BROADCAST_KEY)


def declare_lock(session: AmqpSession, queue: str) -> None:
    """Hold ``queue`` as a lock for this connection; ``ResourceLocked`` if another connection holds
    it. Exclusive, unbound and ``x-max-length 0``: a lock, never a mailbox, which the broker drops
    the moment the holder's connection closes.
    """
    session.declare_queue(queue, exclusive=True, auto_delete=True, arguments={"x-max-length": 0})


def declare_partition_claim(session: AmqpSession, names: Names, index: int) -> None:
    """Claim data partition ``index`` for this connection (``declare_lock``)."""
    declare_lock(session, names.partition_claim(index))


def claim_aggregator_lease(session: AmqpSession, names: Names) -> None:
    """Hold the federation's aggregator lease for this connection (``declare_lock``)."""
    declare_lock(session, names.aggregator_lease)


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
