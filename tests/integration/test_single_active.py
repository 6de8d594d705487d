"""The results queue has one active consumer; a queue from before that rule is used as it is."""

from __future__ import annotations

import time

import pytest

from broker.connection import AmqpSession
from broker.declarations import QueueLimits, results_queue_arguments
from broker.delivery import Delivery, Properties
from broker.names import UPDATE_KEY, Names
from broker.settings import BrokerSettings
from broker.topology import declare_topology

pytestmark = pytest.mark.broker

UPDATES = 20


def publish_updates(session: AmqpSession, names: Names, count: int) -> None:
    for i in range(count):
        session.publish(names.inbox_exchange, UPDATE_KEY, f"u{i}".encode(), Properties())


def test_only_one_of_two_results_consumers_receives_updates(
    broker_settings: BrokerSettings,
) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as first, AmqpSession(broker_settings) as second:
        declare_topology(first, names)
        declare_topology(second, names)
        got: dict[str, list[Delivery]] = {"first": [], "second": []}
        first.consume(names.results_queue, got["first"].append)
        second.consume(names.results_queue, got["second"].append)

        publish_updates(first, names, UPDATES)
        deadline = time.monotonic() + 10
        while len(got["first"]) + len(got["second"]) < UPDATES and time.monotonic() < deadline:
            first.process_events(0.02)
            second.process_events(0.02)

        assert (len(got["first"]), len(got["second"])) == (UPDATES, 0)


def test_a_results_queue_from_before_single_active_consumer_is_used_and_reported(
    broker_settings: BrokerSettings,
) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as session:
        legacy = results_queue_arguments(names, QueueLimits())
        legacy.pop("x-single-active-consumer")
        session.declare_exchange(names.dead_exchange, "fanout")
        session.declare_queue(names.results_queue, durable=True, arguments=legacy)

        single_active = declare_topology(session, names)

        assert single_active is False
        publish_updates(session, names, 1)
        assert session.queue_counts(names.results_queue) == (1, 0)
        assert declare_topology(session, names) is False
