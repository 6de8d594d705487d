"""A three-node RabbitMQ cluster: replicated queues, delivery across members, client failover."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from broker.connection import AmqpSession, Delivery
from broker.delivery import Properties
from broker.errors import BrokerError, PublishFailed
from broker.names import BROADCAST_KEY, UPDATE_KEY, Names
from broker.settings import BrokerSettings
from broker.topology import (
    declare_status_queue,
    declare_topology,
    declare_worker_queue,
    delete_topology,
)
from harness.procs import pump_until, wait_for
from harness.rabbit_cluster import RabbitCluster


def bodies_into(bodies: list[bytes]) -> Callable[[Delivery], None]:
    """A consumer callback that keeps each delivery's body in ``bodies``."""
    return lambda delivery: bodies.append(bytes(delivery.body))


pytestmark = [pytest.mark.broker]


@pytest.fixture
def names(rabbit_cluster: RabbitCluster) -> Iterator[Names]:
    ns = Names(f"c-{uuid.uuid4().hex[:8]}")
    yield ns
    with AmqpSession(settings(rabbit_cluster.amqp_url, ns)) as session:
        delete_topology(session, ns)


def settings(url: str, names: Names) -> BrokerSettings:
    return BrokerSettings(
        amqp_url=url, namespace=names.namespace, quorum_group_size=3, connect_attempts=3
    )


def confirmed(client: AmqpSession, names: Names, body: bytes) -> bool:
    try:
        client.publish(names.inbox_exchange, UPDATE_KEY, body, Properties())
    except PublishFailed:
        client.reset_channel()  # RabbitMQ 3.10 can wedge a channel after a nack: use a fresh one
        return False
    return True


def test_every_shared_queue_is_a_quorum_queue_on_all_three_members(
    rabbit_cluster: RabbitCluster, names: Names
) -> None:
    with AmqpSession(settings(rabbit_cluster.urls[1], names)) as session:
        declare_topology(session, names)
        declare_status_queue(session, names)

    shared = [names.results_queue, names.requests_queue, names.dead_queue, names.status_queue]
    found = {q: rabbit_cluster.queue_members(q) for q in shared}

    everyone = sorted(n.node for n in rabbit_cluster.nodes)
    assert {q: (kind, sorted(members)) for q, (kind, members) in found.items()} == {
        q: ("quorum", everyone) for q in shared
    }


def test_a_broadcast_reaches_workers_attached_to_every_member(
    rabbit_cluster: RabbitCluster, names: Names
) -> None:
    got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    workers = [AmqpSession(settings(url, names)) for url in rabbit_cluster.urls]
    with AmqpSession(settings(rabbit_cluster.urls[0], names)) as aggregator:
        declare_topology(aggregator, names)
        for i, worker in enumerate(workers):
            worker.open()
            queue = declare_worker_queue(worker, names, f"w{i}")
            worker.consume(queue, bodies_into(got[i]))
        aggregator.publish(names.models_exchange, BROADCAST_KEY, b"v1", Properties())

        def delivered() -> bool:
            for worker in workers:
                worker.process_events(0.05)
            return all(got.values())

        wait_for(delivered, 10, "the broadcast on every member")
    for worker in workers:
        worker.close()

    assert got == {0: [b"v1"], 1: [b"v1"], 2: [b"v1"]}


def test_a_client_fails_over_when_the_leader_s_node_dies_and_nothing_confirmed_is_lost(
    rabbit_cluster: RabbitCluster, names: Names
) -> None:
    with AmqpSession(settings(rabbit_cluster.urls[0], names)) as admin:
        declare_topology(admin, names)
    leader = rabbit_cluster.quorum_leader(names.results_queue)
    assert leader is not None
    doomed = rabbit_cluster.index_of(leader)
    # The client starts on the doomed member and lists the others after it.
    order = [rabbit_cluster.urls[(doomed + k) % 3] for k in range(3)]
    client = AmqpSession(settings(",".join(order), names))
    client.open()
    assert client.address and client.address.endswith(f":{rabbit_cluster.nodes[doomed].port}")
    for n in range(5):
        client.publish(names.inbox_exchange, UPDATE_KEY, b"u%d" % n, Properties())
    try:
        rabbit_cluster.kill(doomed)
        with pytest.raises(BrokerError):  # the connection is gone
            client.process_events(1.0)
        client.open()
        survivor = rabbit_cluster.nodes[(doomed + 1) % 3]
        assert client.address == f"127.0.0.1:{survivor.port}"
        # Until the survivors elect a new leader the queue nacks (the worker retries the same).
        wait_for(lambda: confirmed(client, names, b"u5"), 20, "a confirmed publish after failover")
        received: list[Delivery] = []
        client.consume(names.results_queue, received.append)
        pump_until(client, lambda: len(received) >= 6, 20, "6 updates")
    finally:
        client.close()
        rabbit_cluster.restart(doomed)

    assert [d.body for d in received] == [b"u0", b"u1", b"u2", b"u3", b"u4", b"u5"]
