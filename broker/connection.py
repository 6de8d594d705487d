"""One AMQP connection and confirming channel, owned by one thread.

pika's ``BlockingConnection`` is not thread-safe, so each thread that talks to
the broker opens its own ``AmqpSession``. The channel never leaves it: every
operation fedmq needs is a method here, and every pika exception is translated
(``broker.translate``) into ``broker.errors``; callers never import pika.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import pika
from pika.adapters.blocking_connection import BlockingChannel

from broker.delivery import Delivery, Properties, from_pika, to_pika
from broker.errors import BrokerUnavailable, ConnectionLost, MessageTooLarge
from broker.parameters import connection_parameters
from broker.retry import RetryPolicy, retry
from broker.settings import BrokerSettings
from broker.translate import translated
from broker.tuning import tune_pika_receive

log = logging.getLogger(__name__)


class AmqpSession:
    """A connection with one channel in confirm mode. Use from a single thread."""

    def __init__(self, settings: BrokerSettings, *, name: str = "fedmq") -> None:
        self.settings = settings
        self.name = name
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        # Built once, at the first connect: reading the password file and making a TLS context
        # is not something to repeat on every reconnect, let alone every publish.
        self._parameters: pika.URLParameters | None = None
        self._username = unquote(
            urlsplit(settings.amqp_url).username or pika.ConnectionParameters.DEFAULT_USERNAME
        )

    # -- lifecycle -------------------------------------------------------------
    def open(self, *, attempts: int | None = None) -> None:
        """Connect (retrying with backoff) and open a confirming channel."""
        self.close()
        policy = RetryPolicy(
            attempts or self.settings.connect_attempts, self.settings.connect_backoff_max
        )
        try:
            retry(
                self._connect_once,
                policy,
                transient=lambda exc: isinstance(exc, ConnectionLost),
                on_retry=self._connect_failed,
                wait=_sleep,
            )
        except ConnectionLost as exc:
            self.close()
            raise BrokerUnavailable(
                f"cannot reach RabbitMQ at {self.settings.masked_url()} after {policy.attempts} "
                f"attempt(s): {exc}. Start one (`rabbitmq-server -detached`, or "
                "`docker compose up -d rabbitmq`) or set AMQP_URL."
            ) from exc

    def _connect_failed(self, exc: Exception, delay: float) -> None:
        self.close()
        log.info("broker not reachable (%s); retrying in %.1fs", exc, delay)

    def _connect_once(self) -> None:
        tune_pika_receive()
        if self._parameters is None:
            self._parameters = connection_parameters(self.settings)
            self._parameters.client_properties = {"connection_name": self.name}
        with translated("connect"):
            self._connection = pika.BlockingConnection(self._parameters)
        self.reset_channel()

    def reset_channel(self) -> None:
        """A fresh confirming channel on the same connection (after a channel-level error such as 404 or 405).

        Unlike ``open`` this keeps the connection, and with it every exclusive queue it owns.
        """
        with translated("open channel"):
            if self._channel is not None and self._channel.is_open:
                self._channel.close()
            self._channel = self._conn().channel()
            self._channel.confirm_delivery()

    @property
    def server_product(self) -> str:
        """``RabbitMQ 4.1.0``: what we are connected to, for startup lines."""
        props = getattr(getattr(self._connection, "_impl", None), "server_properties", None) or {}
        text = {
            k: v.decode() if isinstance(v, bytes) else str(v)
            for k, v in props.items()
            if k in ("product", "version")
        }
        return " ".join(filter(None, (text.get("product"), text.get("version")))) or "the broker"

    def close(self) -> None:
        """Close quietly; safe to call on a dead or never-opened session."""
        conn, self._connection, self._channel = self._connection, None, None
        if conn is not None and conn.is_open:
            with contextlib.suppress(Exception):
                conn.close()

    @property
    def is_open(self) -> bool:
        return (
            self._channel is not None
            and self._channel.is_open
            and self._connection is not None
            and self._connection.is_open
        )

    @property
    def username(self) -> str:
        """The AMQP user (what the broker validates ``user_id`` against), read once from the URL."""
        return self._username

    def _ch(self) -> BlockingChannel:
        if self._channel is None:
            raise ConnectionLost("session is not open")
        return self._channel

    def _conn(self) -> pika.BlockingConnection:
        if self._connection is None:
            raise ConnectionLost("session is not open")
        return self._connection

    def __enter__(self) -> AmqpSession:
        if not self.is_open:
            self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations ------------------------------------------------------------
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
                f"message of {len(body)} bytes exceeds max_message_bytes={self.settings.max_message_bytes}"
            )
        with translated(f"publish to {exchange or 'amq.default'}/{routing_key}"):
            self._ch().basic_publish(
                exchange, routing_key, body, to_pika(properties), mandatory=mandatory
            )

    def consume(
        self,
        queue: str,
        on_delivery: Callable[[Delivery], None],
        *,
        exclusive: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> str:
        """Start a manual-ack consumer; ``on_delivery`` runs inside ``process_events``."""

        def _callback(_ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
            on_delivery(
                Delivery(
                    method.delivery_tag,
                    method.redelivered,
                    method.routing_key,
                    body,
                    from_pika(props),
                )
            )

        with translated(f"consume {queue}"):
            tag: str = self._ch().basic_consume(
                queue,
                _callback,
                auto_ack=False,
                exclusive=exclusive,
                arguments=dict(arguments or {}),
            )
        return tag

    def cancel(self, consumer_tag: str) -> None:
        """Stop a consumer started with ``consume`` (its unacked deliveries go back to the queue)."""
        with translated(f"cancel {consumer_tag}"):
            self._ch().basic_cancel(consumer_tag)

    # -- declarations (``broker.topology`` says what the federation's are) -------
    def declare_exchange(
        self, name: str, kind: str, *, durable: bool = True, passive: bool = False
    ) -> None:
        with translated(f"declare exchange {name}"):
            self._ch().exchange_declare(name, kind, durable=durable, passive=passive)

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

    def delete_queue(self, name: str) -> None:
        with translated(f"delete {name}"):
            self._ch().queue_delete(name)

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

    def process_events(self, time_limit: float) -> None:
        """Run I/O (deliveries, heartbeats) for up to ``time_limit`` seconds.

        pika closes a channel the broker closed without raising here, so a
        consumer would wait forever on a dead channel; we raise instead.
        """
        with translated("process events"):
            self._conn().process_data_events(time_limit=time_limit)
        if self._channel is not None and self._channel.is_closed:
            raise ConnectionLost(
                "the broker closed the channel (e.g. a delivery held past its consumer_timeout)"
            )

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """(ready messages, consumers) by passive declare; ``BrokerError`` if it does not exist."""
        return self.declare_queue(queue, passive=True)

    def peek(self, queue: str, limit: int) -> list[Delivery]:
        """Up to ``limit`` messages from the head of ``queue``, all put back (``basic.get`` then requeue).

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

    def add_callback_threadsafe(self, callback: Callable[[], None]) -> None:
        """The only call another thread may make: run ``callback`` on this session's thread."""
        with translated("add callback"):
            self._conn().add_callback_threadsafe(callback)


def _sleep(delay: float) -> bool:
    time.sleep(delay)
    return True
