"""Chunked updates reassembled in spool files: memory holds one chunk at a time, never a set.

Each open set has a file in the spool directory; every chunk is written at its
offset as it arrives and its delivery stays unacknowledged. When a set is
whole, its body is read back once, checked against the set's SHA-256 and handed
to the intake like any other delivery; every delivery of the set is
acknowledged only after the update it carries has been handled (applied,
persisted, published, or dead-lettered). The files need no fsync: until that
ack the broker still holds every chunk, and a restart starts with an empty
spool.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from aggregator.core.validation import Rejected
from aggregator.settings import AggregatorSettings
from broker.delivery import Delivery, Properties
from schemas.chunks import ChunkHeader, body_digest
from schemas.reassembly import (
    Abandoned,
    ChunkLimits,
    Complete,
    Reassembly,
    Redundant,
    Refused,
    SetKey,
)

log = logging.getLogger("fedmq.aggregator")


@dataclass(frozen=True)
class Assembled:
    """A whole body from a chunk set: every delivery that carried it, and its spool file."""

    tags: tuple[int, ...]
    properties: Properties
    header: ChunkHeader
    path: Path

    def body(self) -> bytes | Rejected:
        """The body (read once; the file is removed), or why the set as a whole is refused."""
        try:
            body = self.path.read_bytes()
        finally:
            self.path.unlink(missing_ok=True)
        if len(body) != self.header.total_bytes or body_digest(body) != self.header.sha256:
            return Rejected(
                "chunk-digest",
                f"the {self.header.count} chunks of set {self.header.set_id!r} do not reassemble "
                "to the body their SHA-256 names",
            )
        return body


@dataclass(frozen=True)
class RefusedChunk:
    """One chunk rejected by itself (its delivery is dead-lettered and acknowledged)."""

    delivery: Delivery
    rejected: Rejected


@dataclass(frozen=True)
class GivenUp:
    """An incomplete set abandoned: all its deliveries are dead-lettered once and acknowledged."""

    tags: tuple[int, ...]
    properties: Properties
    rejected: Rejected
    total_bytes: int


class Spool:
    """The aggregator's chunk reassembly: decisions by ``schemas.reassembly``, bytes in files."""

    def __init__(self, directory: Path, limits: ChunkLimits) -> None:
        self.directory = directory
        self.core = Reassembly(limits)
        self._props: dict[SetKey, Properties] = {}
        shutil.rmtree(directory, ignore_errors=True)  # a restart: the broker redelivers every chunk
        directory.mkdir(parents=True, exist_ok=True)

    @classmethod
    def for_settings(cls, settings: AggregatorSettings) -> Spool:
        """The run's spool (``<run_dir>/spool``), bounded by the settings' message limit."""
        limits = ChunkLimits(
            max_total_bytes=settings.max_message_bytes,
            max_chunk_bytes=settings.max_message_bytes,
            idle_seconds=settings.chunk_idle_seconds,
        )
        return cls(settings.run_path / "spool", limits)

    def take(
        self, delivery: Delivery, header: ChunkHeader, now: float
    ) -> Assembled | RefusedChunk | None:
        """File one chunk; the whole set once this chunk completes it."""
        sender = delivery.properties.user_id
        verdict = self.core.offer(header, sender, delivery.delivery_tag, len(delivery.body), now)
        if isinstance(verdict, Refused):
            return RefusedChunk(delivery, Rejected(verdict.reason, verdict.detail))
        if isinstance(verdict, Redundant):
            return None
        path = self._path(verdict.key)
        if verdict.new_set:
            self._props[verdict.key] = delivery.properties
            with open(path, "wb") as f:
                f.truncate(header.total_bytes)
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, delivery.body, verdict.offset)
        finally:
            os.close(fd)
        if isinstance(verdict, Complete):
            return Assembled(verdict.tags, self._props.pop(verdict.key), verdict.header, path)
        return None

    def expired(self, now: float) -> list[GivenUp]:
        return [self._given_up(a, "idle") for a in self.core.expired(now)]

    def unblock(self, prefetch: int) -> GivenUp | None:
        """When open sets hold the whole prefetch window, nothing else can arrive: give one up."""
        if self.core.held_tags() < prefetch:
            return None
        abandoned = self.core.abandon_stalest()
        return self._given_up(abandoned, "window") if abandoned else None

    def _given_up(self, abandoned: Abandoned, why: str) -> GivenUp:
        self._path(abandoned.key).unlink(missing_ok=True)
        props = self._props.pop(abandoned.key)
        cause = {
            "idle": "no chunk arrived for its idle timeout",
            "window": "its chunks filled the consumer's prefetch window",
        }[why]
        detail = (
            f"chunk set {abandoned.header.set_id!r} given up with {abandoned.missing} of "
            f"{abandoned.header.count} chunks missing: {cause}"
        )
        log.info("%s", detail)
        return GivenUp(
            abandoned.tags,
            props,
            Rejected("incomplete-chunks", detail),
            abandoned.header.total_bytes,
        )

    def lowest_tag(self) -> int | None:
        return self.core.lowest_tag()

    def clear(self) -> None:
        """The channel died: its deliveries go back to the queue, the files go away."""
        for key in self.core.clear():
            self._path(key).unlink(missing_ok=True)
        self._props.clear()

    def _path(self, key: SetKey) -> Path:
        sender, set_id = key
        return self.directory / f"{(sender or '-').encode().hex()}.{set_id}.part"
