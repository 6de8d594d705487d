"""Connection settings shared by every component (12-factor: environment first)."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.addresses import split_urls

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/%2F"
#: RabbitMQ's default account: shared by whoever knows it, so it proves no identity.
GUEST = "guest"


class BrokerSettings(BaseSettings):
    """Where the broker is and how fedmq names things on it."""

    model_config = SettingsConfigDict(
        env_prefix="FEDMQ_", extra="forbid", frozen=True, validate_default=True
    )

    amqp_url: str = Field(
        DEFAULT_AMQP_URL,
        validation_alias=AliasChoices("amqp_url", "AMQP_URL", "FEDMQ_AMQP_URL"),
        description=(
            "Broker URL (amqp:// or amqps://); the vhost is the path. A cluster: every member's "
            "URL, comma-separated; a client that loses its node reconnects to the next."
        ),
    )
    namespace: str = Field(
        "fedmq",
        pattern=r"^[a-z0-9][a-z0-9_\-]{0,47}$",
        description="Prefix of every exchange and queue, so federations can share a broker.",
    )
    heartbeat: int = Field(30, ge=0, le=600, description="AMQP heartbeat in seconds (0 disables).")
    connect_attempts: int = Field(10, ge=1, description="Connection attempts before giving up.")
    connect_backoff_max: float = Field(
        10.0, gt=0, description="Longest pause between attempts, seconds."
    )
    max_message_bytes: int = Field(
        128 << 20,
        ge=1 << 10,
        description="Largest message accepted or sent (RabbitMQ 4.x defaults to 16 MiB).",
    )
    chunk_bytes: int = Field(
        15 << 20,
        ge=1 << 10,
        description=(
            "Largest AMQP message published; a longer body travels as a chunk set. Keep it at or "
            "below the broker's max_message_size (RabbitMQ 4.x: 16 MiB)."
        ),
    )
    amqp_password_file: str | None = Field(
        None,
        description="Read the broker password from this file (e.g. a Docker secret), not the URL.",
    )
    results_max_length: int = Field(
        10_000,
        ge=1,
        description=(
            "Results queue: most updates waiting; beyond it the broker refuses publishes (nack) "
            "and workers back off."
        ),
    )
    results_max_bytes: int = Field(
        2 << 30, ge=1 << 10, description="Results queue: most bytes waiting (same back-off)."
    )
    delivery_limit: int = Field(
        5,
        ge=1,
        description=(
            "Results queue: an update returned unacknowledged more than this many times is "
            "dead-lettered as poison."
        ),
    )
    confirm_timeout: float = Field(
        60.0,
        ge=0,
        description=(
            "Longest wait for the broker's confirm of a publish, seconds (0: no limit). Past it "
            "the connection counts as lost and the message goes again on a new one: a quorum "
            "queue that lost its majority with a publish in flight may never confirm it."
        ),
    )
    quorum_group_size: int | None = Field(
        None,
        ge=1,
        le=99,
        description=(
            "Cluster: members holding a replica of each quorum queue "
            "(x-quorum-initial-group-size). Set, the dead-letter, request and status queues are "
            "quorum queues too, so no shared queue lives on one node. Unset: one broker."
        ),
    )
    tls_ca_file: str | None = Field(None, description="CA bundle to verify the broker (amqps).")
    tls_cert_file: str | None = Field(None, description="Client certificate for mutual TLS.")
    tls_key_file: str | None = Field(None, description="Client key for mutual TLS.")

    @field_validator("amqp_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        split_urls(value)
        return value

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        """Every broker address, in the order given (one, or a cluster's members)."""
        return split_urls(self.amqp_url)

    @property
    def primary_url(self) -> str:
        """The first address: where user, vhost and host-derived defaults are read from."""
        return self.amqp_urls[0]

    @property
    def amqp_user(self) -> str:
        """The AMQP user of the URL (what the broker validates ``user_id`` against)."""
        return amqp_user(self.primary_url)

    @property
    def shared_guest(self) -> bool:
        """Connected as ``guest``: one shared account, so nobody's identity is known (the demo)."""
        return self.amqp_user == GUEST

    def masked_url(self) -> str:
        """The URL (or list) with its password(s) replaced, for logs."""
        return mask_url(self.amqp_url)


def amqp_user(url: str) -> str:
    """The user an AMQP URL names (``guest`` if none, as pika assumes)."""
    return unquote(urlsplit(url.split(",")[0].strip()).username or GUEST)


def mask_url(url: str) -> str:
    """``amqp://user:***@host/vhost`` for any URL with a password (each of a comma list)."""
    if "," in url:
        return ",".join(mask_url(part.strip()) for part in url.split(","))
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = re.sub(r":[^:@]*@", ":***@", parts.netloc, count=1)
    return urlunsplit(parts._replace(netloc=netloc))


def read_secret(path: str) -> str:
    """A secret from a file (e.g. a Docker secret), without its trailing newline."""
    with open(path, encoding="utf-8") as handle:
        return handle.read().rstrip("\r\n")
