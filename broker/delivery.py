"""Messages as fedmq sees them: the AMQP properties it reads and writes, and a received delivery.

The conversion to and from pika's ``BasicProperties`` lives here, so nothing
outside the broker layer ever handles a pika object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pika

from broker.wire_properties import clean_int, clean_table, clean_text


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
    #: What was wrong with the properties as received (``broker.wire_properties``); empty when
    #: they are sound.
    faults: tuple[str, ...] = ()


@dataclass(frozen=True)
class Delivery:
    """A received message; ``delivery_tag`` is valid only on the session that got it."""

    delivery_tag: int
    redelivered: bool
    routing_key: str
    body: bytes | memoryview
    properties: Properties

    @property
    def delivery_count(self) -> int:
        """Times a quorum queue has delivered this message before (0 on first delivery)."""
        count = self.properties.headers.get("x-delivery-count", 0)
        return count if isinstance(count, int) else 0


def to_pika(props: Properties) -> pika.BasicProperties:
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


def from_pika(props: pika.BasicProperties) -> Properties:
    """The received properties, each checked: a bad one is replaced and named in ``faults``."""
    faults: list[str] = []
    return Properties(
        content_type=clean_text(props.content_type, "content_type", faults),
        message_id=clean_text(props.message_id, "message_id", faults),
        user_id=clean_text(props.user_id, "user_id", faults),
        type=clean_text(props.type, "type", faults),
        timestamp=clean_int(props.timestamp, "timestamp", faults),
        headers=clean_table(props.headers or {}, "headers", faults),
        persistent=props.delivery_mode == 2,
        faults=tuple(faults),
    )
