"""A chunked model reassembled in memory: one set at a time, and a newer set replaces an older one.

A worker only ever wants the newest model, and its queue delivers in order, so
a chunk of another set means the aggregator moved on (or the old set's chunks
were dropped from the head of the queue): the partial set is forgotten and the
new one started. The buffer is the size the set declares, bounded by
``max_message_bytes``; the finished body is checked against the set's SHA-256.
"""

from __future__ import annotations

import logging

from schemas.chunks import ChunkHeader, body_digest
from schemas.reassembly import ChunkLimits, Complete, Reassembly, Redundant, Refused, Store

log = logging.getLogger("fedmq.worker")


class ModelAssembly:
    """Chunks in, whole model bodies out."""

    def __init__(self, *, max_message_bytes: int) -> None:
        limits = ChunkLimits(
            max_total_bytes=max_message_bytes,
            max_chunk_bytes=max_message_bytes,
            max_open_sets=1,
            max_held_bytes=max_message_bytes,
        )
        self.core = Reassembly(limits)
        self._buffer: bytearray | None = None
        #: The largest chunk count seen: the worker's queue must hold that many messages.
        self.largest_set = 1

    def take(self, header: ChunkHeader, body: bytes | memoryview) -> memoryview | None:
        """Place one chunk; the whole body once this chunk completes a valid set."""
        self.largest_set = max(self.largest_set, header.count)
        verdict = self.core.offer(header, None, 0, len(body), 0.0)
        if isinstance(verdict, Refused) and verdict.reason in ("too-many-sets", "chunk-mismatch"):
            self.core.clear()  # another set began: the aggregator has a newer model
            verdict = self.core.offer(header, None, 0, len(body), 0.0)
        if isinstance(verdict, Refused):
            log.warning("ignoring a model chunk: %s (%s)", verdict.reason, verdict.detail)
            return None
        if isinstance(verdict, Redundant):
            return None
        if verdict.new_set or self._buffer is None:
            self._buffer = None  # let the old partial set go before the new one is allocated
            self._buffer = bytearray(header.total_bytes)
        self._buffer[verdict.offset : verdict.offset + len(body)] = body
        if isinstance(verdict, Store):
            return None
        return self._finish(verdict)

    def _finish(self, verdict: Complete) -> memoryview | None:
        buffer, self._buffer = self._buffer, None
        if buffer is None or body_digest(buffer) != verdict.header.sha256:
            log.warning("ignoring model set %s: its SHA-256 does not match", verdict.header.set_id)
            return None
        return memoryview(buffer)  # decoded in place: the arrays are views into it
