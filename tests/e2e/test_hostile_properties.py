"""AMQP properties and headers are input too: an update whose headers pika cannot decode costs only
itself, never the honest updates in the prefetch window beside it.
"""

from __future__ import annotations

import numpy as np
import pytest

from broker.connection import AmqpSession
from broker.delivery import Delivery, Properties
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.settings import BrokerSettings
from broker.topology import declare_topology
from fedmq.commands.audit import queue_contents
from fedmq.status.peek import dead_letters
from harness.amqp_raw import raw_fields, raw_timestamp
from harness.procs import Federation, pump_until, wait_for
from schemas.codec import CONTENT_TYPE, encode
from schemas.messages import ClientUpdate

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

HONEST = 20
DELIVERY_LIMIT = 2


def digits_update(update_id: str, base_version: int = 0) -> bytes:
    """A valid update for the built-in logreg on digits, trained from ``base_version``."""
    arrays = {"W": np.full((64, 10), 0.01, np.float32), "b": np.zeros(10, np.float32)}
    return encode(
        ClientUpdate(
            update_id=update_id,
            worker_id="w0",
            base_version=base_version,
            num_examples=10,
            update_kind="weights",
            train_seconds=0.1,
            arrays=arrays,
        )
    )


def crafted(update_id: str, headers: dict[str, object]) -> Properties:
    good = update_properties(update_id, "guest", 0)
    return Properties(
        content_type=CONTENT_TYPE,
        message_id=update_id,
        user_id="guest",
        type=good.type,
        headers={**good.headers, **headers},
    )


#: Values RabbitMQ accepts and passes on but pika's decoder raises on (the connection then dies).
CRAFTED: dict[str, dict[str, object]] = {
    "crafted-timestamp": {"sent-at": raw_timestamp(2**63)},
    "crafted-year-10000": {"trace": {"when": raw_timestamp(253_402_300_800)}},
}


def test_undecodable_headers_cost_only_their_own_message(
    federation: Federation, amqp_url: str
) -> None:
    fed = federation
    settings = BrokerSettings(
        amqp_url=amqp_url, namespace=fed.namespace, delivery_limit=DELIVERY_LIMIT
    )
    names = Names(fed.namespace)
    honest = [f"honest-{i:02d}" for i in range(HONEST)]
    bodies = {uid: digits_update(uid) for uid in [*honest, *CRAFTED]}
    with AmqpSession(settings) as session, raw_fields():
        declare_topology(session, names)
        # A well-formed refusal, first: queued behind the last honest one it would arrive once the
        # run has reached --max-versions, and be acked as after-final instead.
        future = digits_update("from-the-future", base_version=10**6)
        session.publish(
            names.inbox_exchange,
            UPDATE_KEY,
            future,
            update_properties("from-the-future", "guest", 0),
        )
        for i, uid in enumerate(honest):  # the crafted ones sit in the middle of the window
            if i == HONEST // 2:
                for bad, headers in CRAFTED.items():
                    session.publish(
                        names.inbox_exchange, UPDATE_KEY, bodies[bad], crafted(bad, headers)
                    )
            session.publish(
                names.inbox_exchange, UPDATE_KEY, bodies[uid], update_properties(uid, "guest", 0)
            )

    agg = fed.aggregator(
        "--max-versions", str(HONEST), "--delivery-limit", str(DELIVERY_LIMIT), "--prefetch", "64"
    )
    wait_for(lambda: agg.poll() is not None or dead_count(settings) > len(CRAFTED), 60, "the end")
    log = fed.log("aggregator.log")
    assert agg.wait(timeout=30) == 0, log[-3000:]

    applied = [e["update_id"] for e in fed.audit() if e["event"] == "applied"]
    assert sorted(applied) == honest
    assert "lost the broker" not in log
    rejected = {e["message_id"]: e for e in fed.audit() if e["event"] == "rejected"}
    assert {uid: rejected[uid]["reason"] for uid in CRAFTED} == dict.fromkeys(
        CRAFTED, "bad-properties"
    )
    assert "sent-at" in rejected["crafted-timestamp"]["detail"]
    # A decoded update's rejection names the update and the worker, not only the AMQP message.
    late = rejected["from-the-future"]
    assert (late["reason"], late["update_id"], late["worker_id"]) == (
        "future-version",
        "from-the-future",
        "w0",
    )
    # The peeks of `fedmq audit --check-queues` and `fedmq status` read the dead letters too.
    assert queue_contents(settings) == (
        [],
        {**dict.fromkeys(CRAFTED, "bad-properties"), "from-the-future": "future-version"},
    )
    with AmqpSession(settings) as session:
        peeked = dead_letters(session, names, 10, len(CRAFTED) + 1)
        dead = drain(session, names.dead_queue)
    assert peeked.reasons == {"bad-properties": len(CRAFTED), "future-version": 1}
    kept = {d.properties.message_id: d.body for d in dead if d.properties.message_id in CRAFTED}
    assert kept == {uid: bodies[uid] for uid in CRAFTED}


def dead_count(settings: BrokerSettings) -> int:
    with AmqpSession(settings) as session:
        return session.queue_counts(Names(settings.namespace).dead_queue)[0]


def drain(session: AmqpSession, queue: str) -> list[Delivery]:
    got: list[Delivery] = []
    tag = session.consume(queue, got.append)
    pump_until(session, lambda: len(got) > len(CRAFTED), 10, "dead letters")
    session.cancel(tag)
    return got
