"""The aggregator's durable state: model, version, deduplication window, counters."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from training.weights import Weights


class AppliedWindow:
    """The most recent ``capacity`` applied update ids, for exactly-once application.

    The window must be longer than the results queue can be deep: a
    duplicate can only reach us while its original is within the window.
    """

    def __init__(self, capacity: int, ids: Iterable[str] = ()) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        for update_id in ids:
            self.add(update_id)

    def __contains__(self, update_id: object) -> bool:
        return update_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, update_id: str) -> None:
        self._ids[update_id] = None
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def ids(self) -> list[str]:
        return list(self._ids)


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
