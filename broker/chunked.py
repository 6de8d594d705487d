"""Publishing a body that may exceed the broker's message size limit: whole, or as a chunk set.

``chunk_bytes`` (a setting, at most the broker's ``max_message_size``) decides:
a body up to that size goes as one message; a longer one as consecutive
chunks (``schemas.chunks``), each confirmed before the next is sent, each
carrying the original properties plus the chunk headers. A caller that lost
its connection half-way can resume from the first unconfirmed chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from broker.connection import AmqpSession
from broker.delivery import Properties
from broker.errors import MessageTooLarge
from schemas.chunks import ChunkHeader, split


@dataclass(frozen=True)
class Outgoing:
    """A body ready to publish: itself, and its chunks when it is too long to go whole."""

    body: bytes
    chunks: list[tuple[ChunkHeader, memoryview]]

    @property
    def parts(self) -> int:
        return max(1, len(self.chunks))


def prepare(body: bytes, *, chunk_bytes: int, max_message_bytes: int, set_id: str) -> Outgoing:
    """Cut ``body`` into chunks if it needs to be; ``MessageTooLarge`` beyond the whole limit."""
    if len(body) > max_message_bytes:
        raise MessageTooLarge(
            f"message of {len(body)} bytes exceeds max_message_bytes={max_message_bytes}"
        )
    return Outgoing(body, split(body, chunk_bytes, set_id))


def chunk_properties(props: Properties, header: ChunkHeader) -> Properties:
    return replace(props, headers={**props.headers, **header.amqp_headers()})


def publish(
    session: AmqpSession,
    exchange: str,
    routing_key: str,
    out: Outgoing,
    props: Properties,
    *,
    mandatory: bool = True,
    first: int = 0,
    confirmed: Callable[[int], None] | None = None,
) -> None:
    """Publish ``out`` whole or chunk by chunk from index ``first``; ``confirmed(i)`` after each."""
    if not out.chunks:
        session.publish(exchange, routing_key, out.body, props, mandatory=mandatory)
        if confirmed is not None:
            confirmed(0)
        return
    for header, view in out.chunks[first:]:
        # pika takes bytes only: one chunk is copied at a time, never the whole body
        session.publish(
            exchange, routing_key, bytes(view), chunk_properties(props, header), mandatory=mandatory
        )
        if confirmed is not None:
            confirmed(header.index)
