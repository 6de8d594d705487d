"""The aggregator's durable state: model, version, deduplication window, counters."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from training.weights import Weights


class AppliedWindow:
    """Applied update ids with their base versions: exactly-once application by construction.

    The promise: every applied update whose base version is above ``floor`` is
    remembered. A retry carries its original's base version, so it is either
    found here (a duplicate) or at or below the floor, and then refused as too
    stale, however many other updates arrived in between. When the window is
    full, the id with the lowest base version makes room and the floor rises
    to that base; ids below the staleness bound go first, since an update based
    there is refused as too stale anyway (settings size the window so that the
    floor stays below the staleness bound).
    """

    def __init__(
        self,
        capacity: int,
        ids: Iterable[str] = (),
        *,
        bases: Iterable[int] | None = None,
        floor: int = -1,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.floor = floor
        self._bases: dict[str, int] = {}
        self._heap: list[tuple[int, int, str]] = []  # (base, order, id): the next to make room
        self._order = itertools.count()
        ids = list(ids)
        known = list(bases) if bases is not None else [0] * len(ids)
        for update_id, base in zip(ids, known, strict=True):
            self.add(update_id, base)

    def __contains__(self, update_id: object) -> bool:
        return update_id in self._bases

    def __len__(self) -> int:
        return len(self._bases)

    def add(self, update_id: str, base_version: int) -> None:
        if update_id in self._bases:
            return
        self._bases[update_id] = base_version
        heapq.heappush(self._heap, (base_version, next(self._order), update_id))
        while len(self._bases) > self.capacity:
            base, _, gone = heapq.heappop(self._heap)
            del self._bases[gone]
            self.floor = max(self.floor, base)

    def ids(self) -> list[str]:
        """The ids in the order they were applied (with ``bases()``, what a checkpoint keeps)."""
        return list(self._bases)

    def bases(self) -> list[int]:
        return list(self._bases.values())

    def resized(self, capacity: int) -> AppliedWindow:
        """The same promise with room for ``capacity`` ids; ``ValueError`` if it cannot keep it."""
        if capacity < len(self):
            raise ValueError(
                f"the checkpoint remembers {len(self)} applied update ids; a window of {capacity} "
                "cannot keep them, and a forgotten id could be applied twice"
            )
        return AppliedWindow(capacity, self.ids(), bases=self.bases(), floor=self.floor)


@dataclass
class Counters:
    applied: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    published: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "applied": self.applied,
            "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
            "published": self.published,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counters:
        rejected = data.get("rejected", {})
        return cls(
            applied=int(data.get("applied", 0)),
            duplicates=int(data.get("duplicates", 0)),
            rejected=Counter(rejected if isinstance(rejected, dict) else {}),
            published=int(data.get("published", 0)),
        )


@dataclass
class AggregatorState:
    """Everything a restarted aggregator needs to carry on exactly where it was."""

    run_id: str
    version: int
    weights: Weights
    applied: AppliedWindow
    counters: Counters = field(default_factory=Counters)
    commit: int = 0
    elapsed: float = 0.0
    finished: bool = False
    extra: dict[str, object] = field(default_factory=dict)
