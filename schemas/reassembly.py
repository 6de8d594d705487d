"""Which chunk sets are open and what each still lacks: the pure bookkeeping of reassembly.

The caller stores the bytes (a spool file, a buffer) where a verdict says and
holds every delivery of a set until the set is complete and handled; this
module only decides. A chunk that contradicts its set, breaks a limit or comes
from another sender never touches another set: sets are keyed by the sender
and the set id, so one sender cannot add to, or spoil, another's set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.chunks import ChunkHeader

#: (sender, set id): the sender is the broker-validated user id (``None`` if the message had none).
SetKey = tuple[str | None, str]


@dataclass(frozen=True)
class ChunkLimits:
    """Bounds on what reassembly holds at once."""

    max_total_bytes: int
    max_chunk_bytes: int
    max_open_sets: int = 16
    max_held_bytes: int = 4 << 30
    idle_seconds: float = 60.0


@dataclass(frozen=True)
class Store:
    """Keep this chunk's bytes at ``offset`` of the set's buffer; the set is not complete yet."""

    key: SetKey
    offset: int
    new_set: bool


@dataclass(frozen=True)
class Complete:
    """Keep this chunk's bytes at ``offset``: the set is whole; ``tags`` are its deliveries."""

    key: SetKey
    offset: int
    new_set: bool
    header: ChunkHeader
    tags: tuple[int, ...]


@dataclass(frozen=True)
class Redundant:
    """A second copy of a chunk the set has (a republish): hold the delivery, drop the bytes."""

    key: SetKey


@dataclass(frozen=True)
class Refused:
    """This chunk alone is rejected (its set, if any, is untouched)."""

    reason: str
    detail: str


Verdict = Store | Complete | Redundant | Refused


@dataclass(frozen=True)
class Abandoned:
    """An open set given up (idle too long, or blocking the prefetch window); ``tags`` to reject."""

    key: SetKey
    header: ChunkHeader
    tags: tuple[int, ...]
    missing: int


@dataclass
class _OpenSet:
    header: ChunkHeader
    last_seen: float
    have: set[int] = field(default_factory=set)
    tags: list[int] = field(default_factory=list)


class Reassembly:
    """Open chunk sets, bounded in number and bytes; every decision is a verdict."""

    def __init__(self, limits: ChunkLimits) -> None:
        self.limits = limits
        self._open: dict[SetKey, _OpenSet] = {}

    def offer(
        self, header: ChunkHeader, sender: str | None, tag: int, length: int, now: float
    ) -> Verdict:
        """Decide what to do with one received chunk of ``length`` bytes (delivery ``tag``)."""
        refused = self._check(header, length)
        if refused is not None:
            return refused
        key = (sender, header.set_id)
        current = self._open.get(key)
        if current is None:
            refused = self._room_for(header)
            if refused is not None:
                return refused
            current = self._open[key] = _OpenSet(header, now)
        elif not current.header.same_set(header):
            return Refused(
                "chunk-mismatch",
                f"chunk {header.index} of set {header.set_id!r} disagrees with the set's count, "
                "size or digest",
            )
        current.last_seen = now
        current.tags.append(tag)
        if header.index in current.have:
            return Redundant(key)
        current.have.add(header.index)
        new_set = len(current.have) == 1
        if len(current.have) < header.count:
            return Store(key, header.offset, new_set)
        del self._open[key]
        return Complete(key, header.offset, new_set, current.header, tuple(current.tags))

    def _check(self, header: ChunkHeader, length: int) -> Refused | None:
        if header.total_bytes > self.limits.max_total_bytes:
            return Refused(
                "too-large",
                f"chunk set of {header.total_bytes} bytes exceeds {self.limits.max_total_bytes}",
            )
        if header.stride > self.limits.max_chunk_bytes:
            return Refused(
                "bad-chunk",
                f"chunks of {header.stride} bytes exceed the limit {self.limits.max_chunk_bytes}",
            )
        if length != header.length:
            return Refused(
                "chunk-length",
                f"chunk {header.index} has {length} bytes; its header says {header.length}",
            )
        return None

    def _room_for(self, header: ChunkHeader) -> Refused | None:
        if len(self._open) >= self.limits.max_open_sets:
            return Refused("too-many-sets", f"{len(self._open)} chunk sets are open already")
        if self.held_bytes() + header.total_bytes > self.limits.max_held_bytes:
            return Refused(
                "too-many-sets",
                f"a set of {header.total_bytes} bytes would exceed the reassembly budget of "
                f"{self.limits.max_held_bytes}",
            )
        return None

    def expired(self, now: float) -> list[Abandoned]:
        """Give up every set that received nothing for ``idle_seconds``."""
        idle = [k for k, s in self._open.items() if now - s.last_seen >= self.limits.idle_seconds]
        return [self._abandon(k) for k in idle]

    def abandon_stalest(self) -> Abandoned | None:
        """Give up the set that has waited longest (its chunks fill the window others need)."""
        if not self._open:
            return None
        return self._abandon(min(self._open, key=lambda k: self._open[k].last_seen))

    def _abandon(self, key: SetKey) -> Abandoned:
        s = self._open.pop(key)
        return Abandoned(key, s.header, tuple(s.tags), s.header.count - len(s.have))

    def held_tags(self) -> int:
        """Deliveries held by open sets (they count against the consumer's prefetch)."""
        return sum(len(s.tags) for s in self._open.values())

    def held_bytes(self) -> int:
        """Bytes the open sets will occupy once complete (the spool's bound)."""
        return sum(s.header.total_bytes for s in self._open.values())

    def lowest_tag(self) -> int | None:
        """The lowest delivery tag an open set holds (a ``multiple`` ack must stay below it)."""
        return min((min(s.tags) for s in self._open.values()), default=None)

    def clear(self) -> list[SetKey]:
        """Forget every open set (their deliveries died with the channel); the keys it held."""
        keys = list(self._open)
        self._open.clear()
        return keys
