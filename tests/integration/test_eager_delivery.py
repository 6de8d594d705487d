"""Chunks handed on as pika reads them: during a publish's wait for its confirm, without
``process_events``; every other delivery still waits for ``process_events``."""

from __future__ import annotations

import pytest

from broker.connection import AmqpSession
from broker.delivery import Delivery, Properties
from broker.settings import BrokerSettings
from harness.procs import wait_for
from schemas.chunks import SET_HEADER, is_chunk

pytestmark = pytest.mark.broker

CHUNK = Properties(headers={SET_HEADER: "set-1"})


def test_chunks_arrive_while_a_publish_waits_and_whole_messages_at_process_events(
    broker_settings: BrokerSettings, namespace: str
) -> None:
    queue, other = f"{namespace}.eager", f"{namespace}.other"
    got: list[Delivery] = []
    with AmqpSession(broker_settings) as session:
        for name in (queue, other):
            session.declare_queue(name)
        try:
            for body in (b"c0", b"c1", b"c2"):
                session.publish("", queue, body, CHUNK)
            session.publish("", queue, b"whole", Properties())
            session.consume(queue, got.append, eager=is_chunk)

            def published_meanwhile() -> bool:
                session.publish("", other, b"x", Properties())  # waits for its confirm
                return len(got) == 3

            wait_for(published_meanwhile, 10, "the chunks, during publishes alone")
            chunks_alone = [d.body for d in got]

            def pumped() -> bool:
                session.process_events(0.05)
                return len(got) == 4

            wait_for(pumped, 10, "the whole one, at process_events")
            session.ack(max(d.delivery_tag for d in got), multiple=True)
        finally:
            for name in (queue, other):
                session.delete_queue(name)

    assert chunks_alone == [b"c0", b"c1", b"c2"]
    assert bytes(got[3].body) == b"whole"
