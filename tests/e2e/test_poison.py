"""A poison update (its consumer dies on every delivery) is dead-lettered after the delivery limit,
not looped on forever.

fedmq always declares `x-delivery-limit` itself: RabbitMQ 3.x has no limit by default, 4.x defaults
to 20.
"""

from __future__ import annotations

import signal
import subprocess
from functools import partial

import numpy as np
import pytest

from broker.connection import AmqpSession
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.settings import BrokerSettings
from broker.topology import declare_topology
from fedmq.commands.audit import queue_contents
from harness.procs import Federation, wait_for
from schemas.codec import encode
from schemas.messages import ClientUpdate

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

DELIVERY_LIMIT = 2


def digits_update(update_id: str) -> bytes:
    """A valid update for the built-in logreg on digits, trained from version 0."""
    arrays = {"W": np.zeros((64, 10), np.float32), "b": np.zeros(10, np.float32)}
    update = ClientUpdate(
        update_id=update_id,
        worker_id="w0",
        base_version=0,
        num_examples=10,
        update_kind="weights",
        train_seconds=0.1,
        arrays=arrays,
    )
    return encode(update)


def dead_letters(settings: BrokerSettings) -> int:
    with AmqpSession(settings) as session:
        return session.queue_counts(Names(settings.namespace).dead_queue)[0]


def crashed_or_dead_lettered(agg: subprocess.Popen[bytes], settings: BrokerSettings) -> bool:
    return agg.poll() is not None or dead_letters(settings) > 0


def crash_until_dead_lettered(
    fed: Federation, settings: BrokerSettings, max_lives: int
) -> list[int]:
    """Start aggregators that SIGKILL themselves on their first batch; their exit codes, until the
    broker gives up.
    """
    exits: list[int] = []
    while dead_letters(settings) == 0 and len(exits) < max_lives:
        agg = fed.aggregator(
            "--failpoint", "before-checkpoint:1", "--delivery-limit", str(DELIVERY_LIMIT)
        )
        wait_for(
            partial(crashed_or_dead_lettered, agg, settings),
            60,
            "a crash or a dead letter",
        )
        if agg.poll() is None:  # no update reached it: the broker dead-lettered it first
            agg.send_signal(signal.SIGTERM)
        exits.append(agg.wait(timeout=30))
    return exits


def test_an_update_that_kills_the_aggregator_every_time_is_dead_lettered_after_the_limit(
    federation: Federation, amqp_url: str
) -> None:
    fed = federation
    settings = BrokerSettings(
        amqp_url=amqp_url, namespace=fed.namespace, delivery_limit=DELIVERY_LIMIT
    )
    names = Names(fed.namespace)
    with AmqpSession(settings) as session:
        declare_topology(session, names)
        session.publish(
            names.inbox_exchange,
            UPDATE_KEY,
            digits_update("poison-pill"),
            update_properties("poison-pill", "guest", 0),
        )

    exits = crash_until_dead_lettered(fed, settings, max_lives=DELIVERY_LIMIT + 3)

    # One first delivery plus DELIVERY_LIMIT redeliveries, each fatal; then the broker stops trying.
    assert exits[: DELIVERY_LIMIT + 1] == [-signal.SIGKILL] * (DELIVERY_LIMIT + 1), exits
    assert len(exits) <= DELIVERY_LIMIT + 2, exits
    assert queue_contents(settings) == (
        [],
        {"poison-pill": "delivery_limit"},
    )  # results queue empty
    applied = [e for e in fed.audit() if e["event"] == "applied"]
    assert [e["update_id"] for e in applied] == ["poison-pill"] * (DELIVERY_LIMIT + 1)


def test_updates_in_flight_beside_a_poison_update_are_not_charged_for_its_crashes(
    federation: Federation, amqp_url: str
) -> None:
    """After every connection loss the aggregator takes one delivery at a time until the returned
    ones are through, so only the poison update reaches the delivery limit."""
    fed = federation
    settings = BrokerSettings(
        amqp_url=amqp_url, namespace=fed.namespace, delivery_limit=DELIVERY_LIMIT
    )
    names = Names(fed.namespace)
    honest = [f"honest-update-{i:02d}" for i in range(10)]
    with AmqpSession(settings) as session:
        declare_topology(session, names)
        for uid in ["poison-pill", *honest]:  # all in one prefetch window (64)
            session.publish(
                names.inbox_exchange,
                UPDATE_KEY,
                digits_update(uid),
                update_properties(uid, "guest", 0),
            )

    crash_until_dead_lettered(fed, settings, max_lives=DELIVERY_LIMIT + 3)
    assert dead_letters(settings) == 1  # the poison update alone
    agg = fed.aggregator(
        "--max-versions", str(len(honest)), "--delivery-limit", str(DELIVERY_LIMIT)
    )
    assert agg.wait(timeout=60) == 0, fed.log("aggregator.log")[-3000:]

    assert queue_contents(settings) == ([], {"poison-pill": "delivery_limit"})
    applied = {e["update_id"] for e in fed.audit() if e["event"] == "applied"}
    assert set(honest) <= applied
