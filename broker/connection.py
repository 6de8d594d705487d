"""The session every fedmq component talks to the broker through, owned by one thread.

pika's ``BlockingConnection`` is not thread-safe, so each thread that talks to
the broker opens its own ``AmqpSession`` (a ``broker.link.BrokerLink``). The
channel never leaves it: every operation fedmq needs is a method here, and every
pika exception is translated (``broker.translate``) into ``broker.errors``;
callers never import pika.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pika

from broker.delivery import Delivery, Properties, from_pika, to_pika
from broker.eager import eager_consumer_tag
from broker.errors import ConnectionLost, MessageTooLarge
from broker.link import BrokerLink
from broker.translate import translated

log = logging.getLogger(__name__)


class AmqpSession(BrokerLink):
    """A ``BrokerLink`` with what fedmq does on it: publish, consume, acknowledge, declare, peek."""

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties,
        *,
        mandatory: bool = True,
    ) -> None:
        """Publish and wait for the broker's confirm; ``PublishFailed`` if nacked or unroutable."""
        if len(body) > self.settings.max_message_bytes:
            raise MessageTooLarge(
                f"message of {len(body)} bytes exceeds "
                f"max_message_bytes={self.settings.max_message_bytes}"
            )
        action = f"publish to {exchange or 'amq.default'}/{routing_key}"
        with translated(action), self._confirm_deadline(action):
            self._ch().basic_publish(
                exchange, routing_key, body, to_pika(properties), mandatory=mandatory
            )

    @contextlib.contextmanager
    def _confirm_deadline(self, action: str) -> Iterator[None]:
        """Raise ``ConnectionLost`` out of the wait for a confirm that has not come within
        ``confirm_timeout``; the caller drops the connection and publishes again on a new one.

        pika's blocking publish waits for its confirm without a limit, turning its I/O loop
        meanwhile: a timer of that loop raises out of the wait (the connection is not fit for
        use afterwards, and is not used: a lost connection is closed and opened anew).
        """
        timeout = self.settings.confirm_timeout
        if not timeout:
            yield
            return
        loop = self._conn()._impl  # noqa: SLF001 - the I/O loop's timer, the only hook pika gives

        def expired() -> None:
            raise ConnectionLost(f"{action}: no confirm within {timeout:g}s")

        timer = loop._adapter_call_later(timeout, expired)  # noqa: SLF001
        try:
            yield
        finally:
            loop._adapter_remove_timeout(timer)  # noqa: SLF001

    def consume(
        self,
        queue: str,
        on_delivery: Callable[[Delivery], None],
        *,
        exclusive: bool = False,
        arguments: Mapping[str, Any] | None = None,
        eager: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> str:
        """Start a manual-ack consumer; ``on_delivery`` runs inside ``process_events``.

        Deliveries whose AMQP headers (as received: not yet checked, so ``eager`` only looks)
        ``eager`` accepts are handed on as soon as they are read, even inside another call that
        waits on the broker (a publish awaiting its confirm), so that pika never holds them
        meanwhile (``broker.eager``); ``on_delivery`` must then not use the session.
        """

        def _callback(
            _ch: Any, method: Any, props: pika.BasicProperties, body: bytes | memoryview
        ) -> None:
            on_delivery(
                Delivery(
                    method.delivery_tag,
                    method.redelivered,
                    method.routing_key,
                    body,
                    from_pika(props),
                )
            )

        channel = self._ch()
        chosen = (
            eager_consumer_tag(channel, lambda props: eager(props.headers or {}))
            if eager is not None
            else None
        )
        with translated(f"consume {queue}"):
            tag: str = channel.basic_consume(
                queue,
                _callback,
                auto_ack=False,
                exclusive=exclusive,
                consumer_tag=chosen,
                arguments=dict(arguments or {}),
            )
        return tag

    def cancel(self, consumer_tag: str) -> None:
        """Stop a consumer started with ``consume`` (its unacked deliveries go back)."""
        with translated(f"cancel {consumer_tag}"):
            self._ch().basic_cancel(consumer_tag)

    # -- declarations (``broker.topology`` says what the federation's are) -------
    def declare_exchange(
        self,
        name: str,
        kind: str,
        *,
        durable: bool = True,
        passive: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        with translated(f"declare exchange {name}"):
            self._ch().exchange_declare(
                name,
                kind,
                durable=durable,
                passive=passive,
                arguments=dict(arguments) if arguments else None,
            )

    def declare_queue(
        self,
        name: str,
        *,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        passive: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> tuple[int, int]:
        """Declare (or, ``passive``, only look up) a queue: its (ready messages, consumers)."""
        with translated(f"declare {name}"):
            frame = self._ch().queue_declare(
                name,
                durable=durable,
                exclusive=exclusive,
                auto_delete=auto_delete,
                passive=passive,
                arguments=dict(arguments) if arguments else None,
            )
        return frame.method.message_count, frame.method.consumer_count

    def bind_queue(self, queue: str, exchange: str, routing_key: str = "") -> None:
        with translated(f"bind {queue} to {exchange}"):
            self._ch().queue_bind(queue, exchange, routing_key=routing_key)

    def bind_exchange(self, destination: str, source: str, routing_key: str = "") -> None:
        """Route what reaches ``source`` with ``routing_key`` on to exchange ``destination``."""
        with translated(f"bind exchange {destination} to {source}"):
            self._ch().exchange_bind(destination, source, routing_key=routing_key)

    def delete_queue(self, name: str) -> None:
        with translated(f"delete {name}"):
            self._ch().queue_delete(name)

    def purge_queue(self, name: str) -> int:
        """Drop every ready message of ``name`` (needs read permission); how many were dropped."""
        with translated(f"purge {name}"):
            frame = self._ch().queue_purge(name)
        count: int = frame.method.message_count
        return count

    def delete_exchange(self, name: str) -> None:
        with translated(f"delete exchange {name}"):
            self._ch().exchange_delete(name)

    def set_prefetch(self, count: int) -> None:
        with translated("basic.qos"):
            self._ch().basic_qos(prefetch_count=count)

    def ack(self, delivery_tag: int, *, multiple: bool = False) -> None:
        with translated("ack"):
            self._ch().basic_ack(delivery_tag, multiple=multiple)

    def nack(self, delivery_tag: int, *, requeue: bool) -> None:
        with translated("nack"):
            self._ch().basic_nack(delivery_tag, requeue=requeue)

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """(ready messages, consumers) by passive declare; ``BrokerError`` if it does not exist."""
        return self.declare_queue(queue, passive=True)

    def peek(self, queue: str, limit: int) -> list[Delivery]:
        """Up to ``limit`` messages from the head of ``queue``, all put back (``basic.get`` then
        requeue).

        Needs read permission on the queue; the messages' ``redelivered`` flag is set afterwards.
        """
        got: list[Delivery] = []
        with translated(f"peek {queue}"):
            for _ in range(limit):
                method, props, body = self._ch().basic_get(queue, auto_ack=False)
                if method is None:
                    break
                got.append(
                    Delivery(
                        method.delivery_tag,
                        method.redelivered,
                        method.routing_key,
                        body,
                        from_pika(props),
                    )
                )
            if got:
                self._ch().basic_nack(got[-1].delivery_tag, multiple=True, requeue=True)
        return got

    def browse(self, queue: str, limit: int, *, idle: float = 2.0) -> list[Delivery]:
        """Like ``peek``, by consuming: for a quorum queue with a single active consumer, which
        refuses ``basic.get``. Only while no other consumer is active (it would get nothing);
        stops after ``limit`` messages or ``idle`` seconds without one. All are put back.
        """
        got: list[Delivery] = []
        if limit < 1:
            return got
        tag = self.consume(queue, got.append)
        seen, quiet_since = 0, time.monotonic()
        while len(got) < limit and time.monotonic() - quiet_since < idle:
            self.process_events(0.05)
            if len(got) > seen:
                seen, quiet_since = len(got), time.monotonic()
        with translated(f"browse {queue}"):
            self._ch().basic_cancel(tag)
            if got:
                self._ch().basic_nack(got[-1].delivery_tag, multiple=True, requeue=True)
        return got


__all__ = ["AmqpSession", "Delivery", "Properties"]
