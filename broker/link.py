"""One AMQP connection and its confirming channel: open (with retries), reset, close.

``AmqpSession`` adds the operations; this is the part that owns the socket,
keeps heartbeats flowing (``process_events``) and is the only thing another
thread may poke (``add_callback_threadsafe``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import pika
from pika.adapters.blocking_connection import BlockingChannel

from broker.addresses import after_loss, rotation
from broker.errors import BrokerUnavailable, ConnectionLost
from broker.fields import install as install_field_decoding
from broker.parameters import connection_parameters
from broker.retry import RetryPolicy, retry
from broker.settings import BrokerSettings
from broker.translate import translated
from broker.tuning import tune_pika_receive

log = logging.getLogger("broker.connection")

L = TypeVar("L", bound="BrokerLink")


class BrokerLink:
    """A connection with one channel in confirm mode. Use from a single thread."""

    def __init__(self, settings: BrokerSettings, *, name: str = "fedmq") -> None:
        self.settings = settings
        self.name = name
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        # Built once, at the first connect: reading the password file and making a TLS context
        # is not something to repeat on every reconnect, let alone every publish.
        self._parameters: list[pika.URLParameters] = []
        # Which address we are attached to, and which one the next connect tries first.
        self._current: int | None = None
        self._next = 0
        self._username = unquote(
            urlsplit(settings.primary_url).username or pika.ConnectionParameters.DEFAULT_USERNAME
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
        """One pass over the addresses, from the one after the member we lost (if any)."""
        tune_pika_receive()
        install_field_decoding()
        if not self._parameters:
            self._parameters = [
                connection_parameters(self.settings, url) for url in self.settings.amqp_urls
            ]
            for params in self._parameters:
                params.client_properties = {"connection_name": self.name}
        failures: list[str] = []
        for index in rotation(len(self._parameters), self._next):
            try:
                with translated("connect"):
                    self._connection = pika.BlockingConnection(self._parameters[index])
            except ConnectionLost as exc:
                failures.append(
                    f"{self._address(index)}: {exc}" if len(self._parameters) > 1 else str(exc)
                )
                continue
            self._current = self._next = index
            if len(self._parameters) > 1:
                log.info("%s connected to %s", self.name, self._address(index))
            self.reset_channel()
            return
        raise ConnectionLost("; ".join(failures))

    def _address(self, index: int) -> str:
        params = self._parameters[index]
        return f"{params.host}:{params.port}"

    @property
    def address(self) -> str | None:
        """``host:port`` of the member this session is attached to (``None`` when closed)."""
        return None if self._current is None else self._address(self._current)

    def reset_channel(self) -> None:
        """A fresh confirming channel on the same connection (after a channel-level error such as
        404 or 405).

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
        if self._parameters:  # the next connect begins past the member we were attached to
            self._next = after_loss(len(self._parameters), self._current, self._next)
        self._current = None
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

    def __enter__(self: L) -> L:
        if not self.is_open:
            self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations ------------------------------------------------------------
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

    def add_callback_threadsafe(self, callback: Callable[[], None]) -> None:
        """The only call another thread may make: run ``callback`` on this session's thread."""
        with translated("add callback"):
            self._conn().add_callback_threadsafe(callback)


def _sleep(delay: float) -> bool:
    time.sleep(delay)
    return True
