"""A body held as the consecutive pieces it is made of (``codec.frame_parts``), never joined.

A model's encoded body is its header followed by views of its arrays; a chunk
set can be cut from those pieces directly: the set's length and SHA-256 are
computed over the pieces in order, and each chunk's bytes are gathered from
the pieces it spans when it is sent. So publishing a model in chunks holds
one chunk's copy at a time, never a second copy of the model.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator

Piece = bytes | bytearray | memoryview


class Pieces:
    """Byte ranges read over consecutive pieces, which must not change while it is in use."""

    def __init__(self, pieces: Iterable[Piece]) -> None:
        self._views = [v for v in (memoryview(p).cast("B") for p in pieces) if len(v)]
        self._starts: list[int] = []
        total = 0
        for view in self._views:
            self._starts.append(total)
            total += len(view)
        self.total = total

    def __len__(self) -> int:
        return self.total

    def digest(self) -> str:
        """SHA-256 of the body the pieces make, as ``schemas.chunks.body_digest`` computes it."""
        h = hashlib.sha256()
        for view in self._views:
            h.update(view)
        return h.hexdigest()

    def spans(self, start: int, end: int) -> Iterator[memoryview]:
        """Views (no copies) of the pieces' bytes ``[start, end)``, in order."""
        if not 0 <= start <= end <= self.total:
            raise ValueError(f"range [{start}, {end}) is outside a body of {self.total} bytes")
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        while start < end:
            view, first = self._views[i], self._starts[i]
            stop = min(end, first + len(view))
            yield view[start - first : stop - first]
            start, i = stop, i + 1

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the body, copied once."""
        return b"".join(self.spans(start, end))

    def join(self) -> bytes:
        return self.read(0, self.total)
