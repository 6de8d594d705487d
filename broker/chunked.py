"""Publishing a body that may exceed the broker's message size limit: whole, or as a chunk set.

``chunk_bytes`` (a setting, at most the broker's ``max_message_size``) decides:
a body up to that size goes as one message; a longer one as consecutive
chunks (``schemas.chunks``), each confirmed before the next is sent, each
carrying the original properties plus the chunk headers. A caller that lost
its connection half-way can resume from the first unconfirmed chunk.

A body may be given as its pieces (``schemas.pieces``, e.g. a model's header
and views of its arrays): a chunk's bytes are then gathered from them only
when it is sent, so the publisher holds one chunk's copy at a time and one
unconfirmed chunk (pika's blocking publish waits for each confirm), never a
whole encoded body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from broker.connection import AmqpSession
from broker.delivery import Properties
from broker.errors import MessageTooLarge
from schemas.chunks import ChunkHeader, set_headers
from schemas.pieces import Pieces


@dataclass(frozen=True)
class Outgoing:
    """A body ready to publish: whole, or the headers of its chunks and the pieces they are cut
    from (which must not change while it is in use).
    """

    pieces: Pieces
    headers: list[ChunkHeader]
    #: The body, when it goes as one message.
    whole: bytes | None = None

    @property
    def parts(self) -> int:
        return max(1, len(self.headers))

    def chunk(self, header: ChunkHeader) -> bytes:
        """One chunk's body (pika publishes bytes: the only copy made, one chunk at a time)."""
        return self.pieces.read(header.offset, header.offset + header.length)


def prepare(
    body: bytes | Pieces, *, chunk_bytes: int, max_message_bytes: int, set_id: str
) -> Outgoing:
    """Cut ``body`` into chunks if it needs to be; ``MessageTooLarge`` beyond the whole limit.

    Given as ``Pieces``, a body that goes whole is joined; one that goes in chunks never is.
    """
    pieces = body if isinstance(body, Pieces) else Pieces([body])
    if len(pieces) > max_message_bytes:
        raise MessageTooLarge(
            f"message of {len(pieces)} bytes exceeds max_message_bytes={max_message_bytes}"
        )
    if len(pieces) <= chunk_bytes:
        whole = body if isinstance(body, bytes) else pieces.join()
        return Outgoing(Pieces([whole]), [], whole)
    return Outgoing(pieces, set_headers(len(pieces), pieces.digest(), chunk_bytes, set_id))


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
    if out.whole is not None:
        session.publish(exchange, routing_key, out.whole, props, mandatory=mandatory)
        if confirmed is not None:
            confirmed(0)
        return
    for header in out.headers[first:]:
        session.publish(
            exchange,
            routing_key,
            out.chunk(header),
            chunk_properties(props, header),
            mandatory=mandatory,
        )
        if confirmed is not None:
            confirmed(header.index)
