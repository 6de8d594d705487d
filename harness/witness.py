"""A witness on the models exchange: every version the broker delivered, with its weights' digest.

It judges the aggregator from outside: its own connection, its own queue
(kept through broker crashes by re-declaring it), and the digest computed
from the weights as they travelled, not from what the aggregator says it sent.
"""

from __future__ import annotations

import threading

from aggregator.shell.publisher import digest
from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.errors import BrokerError
from broker.names import BROADCAST_KEY, Names
from broker.reconnect import serve_attached
from broker.settings import BrokerSettings
from schemas.codec import decode
from schemas.messages import ModelVersion


class Witness:
    """Records ``(version, digest)`` of every broadcast model until ``close``."""

    def __init__(self, amqp_url: str, namespace: str) -> None:
        self.settings = BrokerSettings(amqp_url=amqp_url, namespace=namespace, heartbeat=5)
        self.names = Names(namespace)
        self.seen: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="witness", daemon=True)

    def start(self) -> Witness:
        self._thread.start()
        return self

    def close(self) -> list[tuple[int, str]]:
        """Stop and return what was seen (re-raising whatever stopped the witness early)."""
        self._stop.set()
        self._thread.join(timeout=30)
        if self._failure is not None:
            raise AssertionError("the witness failed") from self._failure
        return list(self.seen)

    def _run(self) -> None:
        session = AmqpSession(self.settings, name="fedmq-witness")
        try:
            serve_attached(
                session,
                lambda: self._attach(session),
                lambda: self._serve(session),
                stop=self._stop,
                backoff_max=0.5,
                on_outage=lambda _exc, _delay: None,
            )
        except BaseException as exc:  # handed to the test thread by close()
            self._failure = exc
        finally:
            session.close()

    def _attach(self, session: AmqpSession) -> None:
        session.open()
        queue = f"{self.names.namespace}.witness"
        session.declare_exchange(self.names.models_exchange, "direct", passive=True)
        session.declare_queue(queue, exclusive=True, auto_delete=True)
        session.bind_queue(queue, self.names.models_exchange, BROADCAST_KEY)
        session.consume(queue, lambda d: self._record(session, d))

    def _serve(self, session: AmqpSession) -> None:
        while not self._stop.is_set():
            session.process_events(0.05)

    def _record(self, session: AmqpSession, delivery: Delivery) -> None:
        model = decode(delivery.body, ModelVersion, content_type=delivery.properties.content_type)
        self.seen.append((model.version, digest(dict(model.arrays))))
        session.ack(delivery.delivery_tag)


__all__ = ["BrokerError", "Witness"]
