"""A virtual clock: a priority queue of events by time, then insertion (deterministic)."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(order=True)
class _Entry(Generic[T]):
    time: float
    seq: int
    payload: T = field(compare=False)


class EventQueue(Generic[T]):
    """``push(time, payload)``; ``pop`` returns the earliest (ties in push order)."""

    def __init__(self) -> None:
        self._heap: list[_Entry[T]] = []
        self._seq = itertools.count()

    def push(self, time: float, payload: T) -> None:
        heapq.heappush(self._heap, _Entry(time, next(self._seq), payload))

    def pop(self) -> tuple[float, T]:
        entry = heapq.heappop(self._heap)
        return entry.time, entry.payload

    def __len__(self) -> int:
        return len(self._heap)
