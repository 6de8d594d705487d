"""A publish whose confirm never comes is a lost connection after ``confirm_timeout``.

A RabbitMQ 3.10 quorum queue that loses its majority while a publish is in flight can leave
that publish unconfirmed for good, even once the majority is back (the cluster fault test saw
two workers wait on one for minutes, their member alive and answering heartbeats). Here the
silence is a frozen node with heartbeats off: nothing else would ever end the wait.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid

import pytest

from broker.connection import AmqpSession
from broker.delivery import Properties
from broker.errors import ConnectionLost
from broker.settings import BrokerSettings
from harness.rabbit_node import RabbitNode

pytestmark = pytest.mark.broker


def test_a_publish_never_confirmed_ends_as_a_lost_connection(rabbit_node: RabbitNode) -> None:
    settings = BrokerSettings(amqp_url=rabbit_node.amqp_url, heartbeat=0, confirm_timeout=1.0)
    queue = f"confirm-{uuid.uuid4().hex[:8]}"
    outcome: list[BaseException | None] = []
    pid = int((rabbit_node.base / "pid").read_text().strip())
    with AmqpSession(settings) as session:
        session.declare_queue(queue)

        def publish() -> None:
            try:
                session.publish("", queue, b"x", Properties())
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - the test reports whatever ended it
                outcome.append(exc)

        os.kill(pid, signal.SIGSTOP)
        try:
            sender = threading.Thread(target=publish, daemon=True)
            sender.start()
            sender.join(timeout=15)
            waiting = sender.is_alive()
        finally:
            os.kill(pid, signal.SIGCONT)
        sender.join(timeout=30)

    assert not waiting, "the publish was still waiting for its confirm after 15 s"
    assert len(outcome) == 1 and isinstance(outcome[0], ConnectionLost), outcome
