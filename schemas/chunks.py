"""Chunked transfer: one body too large for the broker, carried as a set of smaller messages.

A body longer than ``chunk_bytes`` is cut into ``count`` consecutive slices of
``ceil(total_bytes / count)`` bytes (the last one shorter). Each slice travels
as its own AMQP message whose headers (``ChunkHeader``) name the set, the
slice's index, the set's size and the SHA-256 of the whole body, so that a
receiver can place every slice at its offset in any order, tell a duplicate
from a mismatch, and check the reassembled body as a whole before decoding it
like any other body. See docs/protocol.md, section 9.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.errors import DecodeError

SET_HEADER: Final = "fedmq-chunk-set"
INDEX_HEADER: Final = "fedmq-chunk-index"
COUNT_HEADER: Final = "fedmq-chunk-count"
TOTAL_HEADER: Final = "fedmq-chunk-total-bytes"
DIGEST_HEADER: Final = "fedmq-chunk-sha256"
CHUNK_HEADERS: Final = (SET_HEADER, INDEX_HEADER, COUNT_HEADER, TOTAL_HEADER, DIGEST_HEADER)

#: More chunks than this in one set is refused: 4096 x 15 MiB is far beyond any model we carry.
MAX_CHUNKS: Final = 4096


class ChunkHeader(BaseModel):
    """What every chunk says about itself and its set (AMQP headers ``fedmq-chunk-*``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    set_id: str = Field(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")
    index: int = Field(ge=0)
    count: int = Field(ge=2, le=MAX_CHUNKS)
    total_bytes: int = Field(ge=2, le=1 << 40)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _consistent(self) -> ChunkHeader:
        if self.index >= self.count:
            raise ValueError(f"index {self.index} is not below count {self.count}")
        if self.count > self.total_bytes:
            raise ValueError(f"{self.count} chunks cannot split {self.total_bytes} bytes")
        if (self.count - 1) * self.stride >= self.total_bytes:
            raise ValueError(f"{self.count} chunks of {self.stride} bytes leave the last one empty")
        return self

    @property
    def stride(self) -> int:
        """Length of every chunk but the last (and the offset step between chunks)."""
        return -(-self.total_bytes // self.count)

    @property
    def offset(self) -> int:
        return self.index * self.stride

    @property
    def length(self) -> int:
        """The exact length this chunk's body must have."""
        return min(self.stride, self.total_bytes - self.offset)

    def same_set(self, other: ChunkHeader) -> bool:
        """Whether ``other`` describes the same set (same id, size, count and digest)."""
        return (self.set_id, self.count, self.total_bytes, self.sha256) == (
            other.set_id,
            other.count,
            other.total_bytes,
            other.sha256,
        )

    def amqp_headers(self) -> dict[str, Any]:
        return {
            SET_HEADER: self.set_id,
            INDEX_HEADER: self.index,
            COUNT_HEADER: self.count,
            TOTAL_HEADER: self.total_bytes,
            DIGEST_HEADER: self.sha256,
        }


def body_digest(body: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(body).hexdigest()


def chunk_count(total_bytes: int, chunk_bytes: int) -> int:
    """Chunks a body of ``total_bytes`` is cut into (1: it is sent whole)."""
    return max(1, -(-total_bytes // chunk_bytes))


def split(body: bytes, chunk_bytes: int, set_id: str) -> list[tuple[ChunkHeader, memoryview]]:
    """The chunks of ``body`` (views, not copies); ``[]`` when it fits in one message."""
    if chunk_count(len(body), chunk_bytes) == 1:
        return []
    view = memoryview(body)
    headers = set_headers(len(body), body_digest(body), chunk_bytes, set_id)
    return [(h, view[h.offset : h.offset + h.length]) for h in headers]


def set_headers(total_bytes: int, digest: str, chunk_bytes: int, set_id: str) -> list[ChunkHeader]:
    """The headers of the chunk set a body of ``total_bytes`` with SHA-256 ``digest`` is cut into;
    ``[]`` when it fits in one message.
    """
    count = chunk_count(total_bytes, chunk_bytes)
    if count == 1:
        return []
    if count > MAX_CHUNKS:
        raise ValueError(
            f"{total_bytes} bytes in chunks of {chunk_bytes} need more than {MAX_CHUNKS}"
        )
    return [
        ChunkHeader(set_id=set_id, index=i, count=count, total_bytes=total_bytes, sha256=digest)
        for i in range(count)
    ]


def is_chunk(headers: Mapping[str, Any]) -> bool:
    """Whether a message's AMQP headers claim it is a chunk (``read_chunk_header`` checks them)."""
    return any(name in headers for name in CHUNK_HEADERS)


def read_chunk_header(headers: Mapping[str, Any]) -> ChunkHeader | None:
    """The chunk header among a message's AMQP headers; ``None`` for a whole (unchunked) message.

    Raises ``DecodeError("bad-chunk")`` when some but not all chunk headers are present or any is
    invalid.
    """
    if not is_chunk(headers):
        return None
    present = [name for name in CHUNK_HEADERS if name in headers]
    values = {name: _text(headers[name]) for name in present}
    fields = {"set_id": SET_HEADER, "index": INDEX_HEADER, "count": COUNT_HEADER}
    fields |= {"total_bytes": TOTAL_HEADER, "sha256": DIGEST_HEADER}
    try:
        return ChunkHeader.model_validate({f: values.get(h) for f, h in fields.items()})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "chunk"
        raise DecodeError("bad-chunk", f"chunk headers: {where}: {first['msg']}") from exc


def _text(value: Any) -> Any:
    """AMQP long strings may arrive as bytes; everything else is taken as it is."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value
