"""The private-node fixture itself: it starts, serves AMQP, and survives a restart."""

from __future__ import annotations

import pytest

from broker.connection import AmqpSession
from broker.names import Names
from broker.settings import BrokerSettings
from broker.topology import declare_topology
from harness.rabbit_node import RabbitNode

pytestmark = pytest.mark.broker


def test_a_private_node_keeps_durable_queues_across_a_restart(rabbit_node: RabbitNode) -> None:
    settings = BrokerSettings(amqp_url=rabbit_node.amqp_url, namespace="fx", connect_attempts=3)
    with AmqpSession(settings) as session:
        declare_topology(session, Names("fx"))

    rabbit_node.restart()

    with AmqpSession(settings) as session:
        assert session.queue_counts(Names("fx").results_queue) == (0, 0)
