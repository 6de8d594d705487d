"""One AMQP connection and confirming channel, owned by one thread.

pika's ``BlockingConnection`` is not thread-safe, so each thread that talks to
the broker opens its own ``AmqpSession``. Every pika exception is translated
here into ``broker.errors``; callers never import pika.
"""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pika
import pika.exceptions as pe
from pika.adapters.blocking_connection import BlockingChannel

from broker.errors import (
    AccessRefused,
    BrokerError,
    BrokerUnavailable,
    ConnectionLost,
    MessageTooLarge,
    NotFound,
    PublishFailed,
    ResourceLocked,
    TopologyMismatch,
)
from broker.settings import BrokerSettings, read_secret
from broker.tuning import tune_pika_receive

log = logging.getLogger(__name__)

BACKOFF_BASE = 0.25
#: How long a publish may stay blocked by a broker resource alarm before we give up.
BLOCKED_CONNECTION_TIMEOUT = 60.0


@dataclass(frozen=True)
class Properties:
    """The AMQP message properties fedmq reads and writes."""

    content_type: str | None = None
    message_id: str | None = None
    user_id: str | None = None
    type: str | None = None
    timestamp: int | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    persistent: bool = True
    expiration_ms: int | None = None


@dataclass(frozen=True)
class Delivery:
    """A received message; ``delivery_tag`` is valid only on the session that got it."""

    delivery_tag: int
    redelivered: bool
    routing_key: str
    body: bytes
    properties: Properties

    @property
    def delivery_count(self) -> int:
        """Times a quorum queue has delivered this message before (0 on first delivery)."""
        count = self.properties.headers.get("x-delivery-count", 0)
        return count if isinstance(count, int) else 0


def backoff_delay(attempt: int, maximum: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter in its upper half: attempt 0 waits ~BACKOFF_BASE."""
    rng = rng or random
    ceiling = min(maximum, BACKOFF_BASE * (2**attempt))
    return ceiling * rng.uniform(0.5, 1.0)


def _with_password_slot(url: str) -> str:
    """``amqps://user@host/`` -> ``amqps://user:@host/``: pika cannot parse a user without a password
    (the password then comes from ``amqp_password_file``)."""
    parts = urlsplit(url)
    if parts.username is None or parts.password is not None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace("@", ":@", 1)))


def connection_parameters(settings: BrokerSettings) -> pika.URLParameters:
    """pika parameters from settings: heartbeat, timeouts, TLS with verification."""
    params = pika.URLParameters(_with_password_slot(settings.amqp_url))
    params.heartbeat = settings.heartbeat
    params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT
    params.connection_attempts = 1
    params.socket_timeout = 10
    params.client_properties = {"connection_name": "fedmq"}
    if settings.amqp_password_file:
        params.credentials = pika.PlainCredentials(
            params.credentials.username, read_secret(settings.amqp_password_file)
        )
    if urlsplit(settings.amqp_url).scheme == "amqps":
        context = ssl.create_default_context(cafile=settings.tls_ca_file)
        if settings.tls_cert_file:
            context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
        params.ssl_options = pika.SSLOptions(context, params.host)
    return params


def _pika_properties(props: Properties) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=props.content_type,
        message_id=props.message_id,
        user_id=props.user_id,
        type=props.type,
        timestamp=props.timestamp,
        headers=dict(props.headers) or None,
        delivery_mode=pika.DeliveryMode.Persistent
        if props.persistent
        else pika.DeliveryMode.Transient,
        expiration=str(props.expiration_ms) if props.expiration_ms is not None else None,
    )


def _our_properties(props: pika.BasicProperties) -> Properties:
    return Properties(
        content_type=props.content_type,
        message_id=props.message_id,
        user_id=props.user_id,
        type=props.type,
        timestamp=props.timestamp,
        headers=dict(props.headers or {}),
        persistent=props.delivery_mode == 2,
    )


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Re-raise pika's exceptions as ``broker.errors`` (with what we were doing)."""
    try:
        yield
    except pe.UnroutableError as exc:
        raise PublishFailed(f"{action}: message was unroutable", unroutable=True) from exc
    except pe.NackError as exc:
        raise PublishFailed(
            f"{action}: broker refused the message (nack; is the queue full?)"
        ) from exc
    except (
        pe.ProbableAuthenticationError,
        pe.ProbableAccessDeniedError,
        pe.AuthenticationError,
    ) as exc:
        raise AccessRefused(f"{action}: access refused ({exc})") from exc
    except pe.ChannelClosedByBroker as exc:
        if exc.reply_code == 403:
            raise AccessRefused(f"{action}: {exc.reply_text}") from exc
        if exc.reply_code == 404:
            raise NotFound(f"{action}: {exc.reply_text}") from exc
        if exc.reply_code == 405:
            raise ResourceLocked(f"{action}: {exc.reply_text}") from exc
        if exc.reply_code == 406 and "user_id" in (exc.reply_text or ""):
            raise AccessRefused(f"{action}: {exc.reply_text}") from exc
        if exc.reply_code == 406 and "inequivalent" in (exc.reply_text or ""):
            raise TopologyMismatch(f"{action}: {exc.reply_text}") from exc
        raise ConnectionLost(
            f"{action}: channel closed by broker ({exc.reply_code} {exc.reply_text})"
        ) from exc
    except pe.ConnectionClosedByBroker as exc:
        if exc.reply_code == 403:
            raise AccessRefused(f"{action}: {exc.reply_text}") from exc
        raise ConnectionLost(
            f"{action}: connection closed by broker ({exc.reply_code} {exc.reply_text})"
        ) from exc
    except (pe.AMQPError, OSError) as exc:
        raise ConnectionLost(f"{action}: {type(exc).__name__}: {exc}") from exc


class AmqpSession:
    """A connection with one channel in confirm mode. Use from a single thread."""

    def __init__(self, settings: BrokerSettings, *, name: str = "fedmq") -> None:
        self.settings = settings
        self.name = name
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        # Not via connection_parameters: that reads the password file and builds a TLS context,
        # and the user name is needed for every publish.
        self._username = unquote(
            urlsplit(settings.amqp_url).username or pika.ConnectionParameters.DEFAULT_USERNAME
        )

    # -- lifecycle -------------------------------------------------------------
    def open(self, *, attempts: int | None = None) -> None:
        """Connect (retrying with backoff) and open a confirming channel."""
        self.close()
        attempts = attempts or self.settings.connect_attempts
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                self._connect_once()
                return
            except AccessRefused:
                raise
            except ConnectionLost as exc:
                last = exc
                self.close()
                if attempt + 1 < attempts:
                    delay = backoff_delay(attempt, self.settings.connect_backoff_max)
                    log.info("broker not reachable (%s); retrying in %.1fs", exc, delay)
                    time.sleep(delay)
        raise BrokerUnavailable(
            f"cannot reach RabbitMQ at {self.settings.masked_url()} after {attempts} attempt(s): {last}. "
            "Start one (`rabbitmq-server -detached`, or `docker compose up -d rabbitmq`) or set AMQP_URL."
        )

    def _connect_once(self) -> None:
        tune_pika_receive()
        params = connection_parameters(self.settings)
        params.client_properties = {"connection_name": self.name}
        with translated("connect"):
            self._connection = pika.BlockingConnection(params)
        self.reset_channel()

    def reset_channel(self) -> None:
        """A fresh confirming channel on the same connection (after a channel-level error such as 404 or 405).

        Unlike ``open`` this keeps the connection, and with it every exclusive queue it owns.
        """
        with translated("open channel"):
            if self._channel is not None and self._channel.is_open:
                self._channel.close()
            self._channel = self.connection.channel()
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

    @property
    def channel(self) -> BlockingChannel:
        if self._channel is None:
            raise ConnectionLost("session is not open")
        return self._channel

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
            self.channel.basic_publish(
                exchange, routing_key, body, _pika_properties(properties), mandatory=mandatory
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
                    _our_properties(props),
                )
            )

        with translated(f"consume {queue}"):
            return self.channel.basic_consume(
                queue,
                _callback,
                auto_ack=False,
                exclusive=exclusive,
                arguments=dict(arguments or {}),
            )

    def set_prefetch(self, count: int) -> None:
        with translated("basic.qos"):
            self.channel.basic_qos(prefetch_count=count)

    def ack(self, delivery_tag: int, *, multiple: bool = False) -> None:
        with translated("ack"):
            self.channel.basic_ack(delivery_tag, multiple=multiple)

    def nack(self, delivery_tag: int, *, requeue: bool) -> None:
        with translated("nack"):
            self.channel.basic_nack(delivery_tag, requeue=requeue)

    def process_events(self, time_limit: float) -> None:
        """Run I/O (deliveries, heartbeats) for up to ``time_limit`` seconds.

        pika closes a channel the broker closed without raising here, so a
        consumer would wait forever on a dead channel; we raise instead.
        """
        with translated("process events"):
            self.connection.process_data_events(time_limit=time_limit)
        if self._channel is not None and self._channel.is_closed:
            raise ConnectionLost(
                "the broker closed the channel (e.g. a delivery held past its consumer_timeout)"
            )

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """(ready messages, consumers) by passive declare; ``BrokerError`` if it does not exist."""
        with translated(f"inspect {queue}"):
            frame = self.channel.queue_declare(queue, passive=True)
        return frame.method.message_count, frame.method.consumer_count

    def peek(self, queue: str, limit: int) -> list[Delivery]:
        """Up to ``limit`` messages from the head of ``queue``, all put back (``basic.get`` then requeue).

        Needs read permission on the queue; the messages' ``redelivered`` flag is set afterwards.
        """
        got: list[Delivery] = []
        with translated(f"peek {queue}"):
            for _ in range(limit):
                method, props, body = self.channel.basic_get(queue, auto_ack=False)
                if method is None:
                    break
                got.append(
                    Delivery(
                        method.delivery_tag,
                        method.redelivered,
                        method.routing_key,
                        body,
                        _our_properties(props),
                    )
                )
            if got:
                self.channel.basic_nack(got[-1].delivery_tag, multiple=True, requeue=True)
        return got

    def add_callback_threadsafe(self, callback: Callable[[], None]) -> None:
        """The only call another thread may make: run ``callback`` on this session's thread."""
        with translated("add callback"):
            self.connection.add_callback_threadsafe(callback)

    @property
    def connection(self) -> pika.BlockingConnection:
        if self._connection is None:
            raise ConnectionLost("session is not open")
        return self._connection


__all__ = [
    "AmqpSession",
    "BrokerError",
    "Delivery",
    "Properties",
    "backoff_delay",
    "connection_parameters",
    "translated",
]
