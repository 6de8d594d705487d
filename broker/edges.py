"""The exchanges and queues of scale-out FedBuff, and their declaration.

::

    workers --(update, header fedmq-worker)--> [ns.inbox] --update--> [ns.edges]
        [ns.edges] (x-consistent-hash, hash-header fedmq-worker) --> ns.edge.<i>  (one per edge)
    edges --(edge-offer | edge-partial)--> ns.root  (the root's inbox, default exchange)
    root --(step-plan | steps-applied)--> [ns.plans] (fanout) --> one exclusive queue per edge

The consistent-hash exchange is RabbitMQ's ``rabbitmq_consistent_hash_exchange``
plugin: each edge queue is bound with the same weight, and a worker's updates
always reach the same edge. On a cluster the edge queues and the root's inbox
are quorum queues on ``quorum_group_size`` members (``declarations.replicated``).
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.connection import AmqpSession
from broker.declarations import QueueLimits, replicated
from broker.names import UPDATE_KEY, Names
from broker.properties import WORKER_HEADER

#: The plugin's exchange type, and its argument naming the header it hashes.
HASH_EXCHANGE_TYPE = "x-consistent-hash"
HASH_WEIGHT = "1"


@dataclass(frozen=True)
class EdgeNames:
    """Resource names of one scale-out federation (namespace ``ns``)."""

    namespace: str

    @property
    def hash_exchange(self) -> str:
        return f"{self.namespace}.edges"

    def edge_queue(self, index: int) -> str:
        return f"{self.namespace}.edge.{index}"

    @property
    def root_queue(self) -> str:
        return f"{self.namespace}.root"

    @property
    def plans_exchange(self) -> str:
        return f"{self.namespace}.plans"

    @property
    def inbox_exchange(self) -> str:
        return Names(self.namespace).inbox_exchange


def declare_edges(session: AmqpSession, names: EdgeNames, edges: int, limits: QueueLimits) -> None:
    """Declare the hash exchange behind the inbox, ``edges`` edge queues, the root's inbox and the
    plans fanout. Idempotent; every edge and the root declare it all, in any order."""
    session.declare_exchange(names.inbox_exchange, "direct")
    session.declare_exchange(
        names.hash_exchange, HASH_EXCHANGE_TYPE, arguments={"hash-header": WORKER_HEADER}
    )
    session.bind_exchange(names.hash_exchange, names.inbox_exchange, UPDATE_KEY)
    for index in range(edges):
        queue = names.edge_queue(index)
        session.declare_queue(queue, durable=True, arguments=replicated(limits, {}))
        session.bind_queue(queue, names.hash_exchange, HASH_WEIGHT)
    session.declare_queue(names.root_queue, durable=True, arguments=replicated(limits, {}))
    session.declare_exchange(names.plans_exchange, "fanout")


def attach_plans(session: AmqpSession, names: EdgeNames, tag: str) -> str:
    """An exclusive queue of this connection (``tag``: unique per process) on the plans fanout;
    its name."""
    queue = f"{names.namespace}.plans.{tag}"
    session.declare_queue(queue, exclusive=True, auto_delete=True)
    session.bind_queue(queue, names.plans_exchange)
    return queue
