"""`fedmq broker delete-namespace NS`: removes a federation, never under its running aggregator."""

from __future__ import annotations

import pytest

from broker.connection import AmqpSession
from broker.errors import NotFound
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.settings import BrokerSettings
from broker.topology import declare_status_queue, declare_topology
from fedmq.cli import main

pytestmark = pytest.mark.broker


def remaining(settings: BrokerSettings, names: Names) -> list[str]:
    """The federation's shared queues and exchanges that still exist."""
    left = []
    with AmqpSession(settings) as session:
        for queue in names.queues():
            try:
                session.queue_counts(queue)
                left.append(queue)
            except NotFound:
                session.reset_channel()
        for exchange in names.exchanges():
            try:
                session.declare_exchange(exchange, "direct", passive=True)
                left.append(f"exchange {exchange}")
            except NotFound:
                session.reset_channel()
    return left


def delete(settings: BrokerSettings, *extra: str) -> int:
    return main(
        ["broker", "delete-namespace", settings.namespace, "--amqp-url", settings.amqp_url, *extra]
    )


def test_it_removes_every_queue_and_exchange_and_says_what_was_waiting(
    broker_settings: BrokerSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as session:
        declare_topology(session, names)
        declare_status_queue(session, names)
        props = update_properties("u1", session.username, 0)
        session.publish(names.inbox_exchange, UPDATE_KEY, b"x", props, mandatory=True)

    code = delete(broker_settings)

    assert code == 0
    assert remaining(broker_settings, names) == []
    out = capsys.readouterr().out
    queues, exchanges = len(names.queues()), len(names.exchanges())
    assert f"{queues} queue(s) (1 waiting message(s) dropped), {exchanges} exchange(s)" in out


def test_it_refuses_while_an_aggregator_consumes_and_force_overrides(
    broker_settings: BrokerSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    names = Names(broker_settings.namespace)
    with AmqpSession(broker_settings) as aggregator:
        declare_topology(aggregator, names)
        declare_status_queue(aggregator, names)
        aggregator.consume(names.results_queue, lambda _d: None)

        refused = delete(broker_settings)
        err = capsys.readouterr().err
        left_after_refusal = remaining(broker_settings, names)
        forced = delete(broker_settings, "--force")

    assert refused == 1 and f"{names.results_queue} has 1 consumer(s)" in err
    assert "--force" in err
    assert len(left_after_refusal) == len(names.queues()) + len(names.exchanges())
    assert forced == 0 and remaining(broker_settings, names) == []


def test_a_namespace_that_is_not_there_is_nothing_to_delete(
    broker_settings: BrokerSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    code = delete(broker_settings)

    assert code == 0 and "nothing to delete" in capsys.readouterr().out
