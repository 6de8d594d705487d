"""The broker layer against the real RabbitMQ: topology, confirms, latest-value delivery, errors."""

from __future__ import annotations

import time

import pytest

from broker.connection import AmqpSession
from broker.delivery import Delivery, Properties
from broker.errors import AccessRefused, BrokerUnavailable, PublishFailed
from broker.names import BROADCAST_KEY, UPDATE_KEY, Names
from broker.properties import dead_letter_properties
from broker.settings import BrokerSettings
from broker.topology import declare_topology, declare_worker_queue

pytestmark = pytest.mark.broker


def drain(session: AmqpSession, queue: str, expected: int, timeout: float = 10.0) -> list[Delivery]:
    got: list[Delivery] = []
    tag = session.consume(queue, got.append)
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        session.process_events(0.05)
    session.cancel(tag)
    for d in got:
        session.ack(d.delivery_tag)
    return got


def test_declaring_the_topology_twice_is_harmless(broker_settings: BrokerSettings) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as session:
        declare_topology(session, names)
        declare_topology(session, names)

        assert session.queue_counts(names.results_queue) == (0, 0)
        assert session.queue_counts(names.dead_queue) == (0, 0)


def test_a_worker_queue_keeps_only_the_newest_model(broker_settings: BrokerSettings) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as agg, AmqpSession(broker_settings) as worker:
        declare_topology(agg, names)
        queue = declare_worker_queue(worker, names, "w1")
        for version in range(5):
            agg.publish(
                names.models_exchange,
                BROADCAST_KEY,
                f"v{version}".encode(),
                Properties(persistent=False),
            )

        assert worker.queue_counts(queue)[0] == 1
        (delivery,) = drain(worker, queue, 1)
        assert delivery.body == b"v4"


def test_updates_are_confirmed_into_the_durable_results_queue(
    broker_settings: BrokerSettings,
) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as session:
        declare_topology(session, names)
        session.publish(names.inbox_exchange, UPDATE_KEY, b"x", Properties(message_id="m1"))

        assert session.queue_counts(names.results_queue)[0] == 1


def test_an_unroutable_mandatory_publish_fails_loudly(broker_settings: BrokerSettings) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as session:
        declare_topology(session, names)
        with pytest.raises(PublishFailed) as info:
            session.publish(names.inbox_exchange, "no-such-key", b"x", Properties(), mandatory=True)
        assert info.value.unroutable


def test_dead_lettering_keeps_the_reason_and_the_original_user(
    broker_settings: BrokerSettings,
) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as session:
        declare_topology(session, names)
        original = Properties(message_id="m1", user_id="guest", content_type="x")
        session.publish(
            names.dead_exchange,
            "",
            b"bad",
            dead_letter_properties(original, "non-finite", "W has NaN"),
        )

        (dead,) = drain(session, names.dead_queue, 1)

    assert dead.properties.headers["x-fedmq-reason"] == "non-finite"
    assert dead.properties.headers["x-fedmq-original-user-id"] == "guest"
    assert dead.properties.user_id is None and dead.body == b"bad"


def test_the_broker_validates_user_id(broker_settings: BrokerSettings) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as session:
        declare_topology(session, names)
        with pytest.raises(AccessRefused) as info:
            session.publish(
                names.inbox_exchange, UPDATE_KEY, b"x", Properties(user_id="someone-else")
            )
    assert "someone-else" in str(info.value)


def test_an_unreachable_broker_is_reported_after_bounded_retries() -> None:
    settings = BrokerSettings(
        amqp_url="amqp://guest:guest@127.0.0.1:1/%2F", connect_attempts=2, connect_backoff_max=0.1
    )
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        AmqpSession(settings).open()
    assert time.monotonic() - started < 10
    assert "127.0.0.1:1" in str(info.value) and "guest:***" in str(info.value)


def test_wrong_credentials_are_access_refused(amqp_url: str) -> None:
    settings = BrokerSettings(
        amqp_url=amqp_url.replace("guest:guest", "guest:wrong"), connect_attempts=1
    )
    with pytest.raises(AccessRefused):
        AmqpSession(settings).open()


def test_a_body_over_the_limit_is_refused_before_it_is_sent(
    broker_settings: BrokerSettings,
) -> None:
    from broker.errors import MessageTooLarge

    settings = broker_settings.model_copy(update={"max_message_bytes": 1024})
    names = Names(settings.namespace)
    with AmqpSession(settings) as session:
        declare_topology(session, names)
        with pytest.raises(MessageTooLarge):
            session.publish(names.inbox_exchange, UPDATE_KEY, bytes(2048), Properties())
        assert session.queue_counts(names.results_queue)[0] == 0
