"""A bounded share of each buffer per worker; an extra contribution waits for the next buffer.

User-level DP needs exactly one contribution per worker and release (one
worker's influence on a release is one clipped update): ``strict``. Robust
aggregation needs a worker's share of a buffer to be no more than its share
of the workers, so a fast attacker cannot out-vote a trimmed mean: each
worker may fill ceil(K / n) places of a buffer of K, n being the number of
distinct workers among recent valid arrivals. Counting arrivals (also the
refused ones) lets n follow workers that leave, so a buffer can always fill.
A contribution beyond the share waits ("held", one per worker); one more is
refused, so what is held stays bounded by the number of workers.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from aggregator.core.strategy import Contribution
from aggregator.core.validation import Rejected

HELD_PREFIX = "held/"
#: Recent valid arrivals remembered per buffer place, to count the workers taking part.
ARRIVALS_PER_PLACE = 4


class BufferMembership:
    """Who is in the buffer being filled, and the contributions held for the next one."""

    def __init__(self, per_buffer: int, *, strict: bool = True) -> None:
        if per_buffer < 1:
            raise ValueError("per_buffer must be at least 1")
        self.per_buffer = per_buffer
        self.strict = strict
        self.members: list[str] = []
        self.held: list[Contribution] = []
        self._arrivals: deque[str] = deque(maxlen=ARRIVALS_PER_PLACE * per_buffer)

    def share(self) -> int:
        """Places of one buffer a worker may fill: 1 when strict, else ceil(K / workers seen
        recently).
        """
        if self.strict:
            return 1
        return max(1, math.ceil(self.per_buffer / max(len(set(self._arrivals)), 1)))

    def refuse(self, worker_id: str) -> Rejected | None:
        """Count a valid arrival; refuse it when its worker's share is full and one is held."""
        self._arrivals.append(worker_id)
        if self.must_wait(worker_id) and any(h.worker_id == worker_id for h in self.held):
            return Rejected(
                "participation-limit",
                f"{worker_id} has its share of this buffer and an update held",
            )
        return None

    def must_wait(self, worker_id: str) -> bool:
        """True when ``worker_id`` already fills its share of the buffer: hold its contribution."""
        return self.members.count(worker_id) >= self.share()

    def join(self, worker_id: str) -> None:
        self.members.append(worker_id)

    def released(self) -> None:
        """The buffer was combined into a release; a new one starts empty."""
        self.members = []

    def readmissions(self) -> Iterator[Contribution]:
        """Held contributions that may enter the new buffer; the caller admits (and joins) each.

        Fewer than a full buffer, so re-admitting never triggers a step by itself.
        """
        while self.held and len(self.members) < self.per_buffer - 1:
            candidate = next((h for h in self.held if not self.must_wait(h.worker_id)), None)
            if candidate is None:
                return
            self.held.remove(candidate)
            yield candidate

    def state(self) -> tuple[dict[str, object], dict[str, np.ndarray]]:
        meta = []
        arrays: dict[str, np.ndarray] = {}
        for i, c in enumerate(self.held):
            meta.append(
                {
                    "update_id": c.update_id,
                    "worker_id": c.worker_id,
                    "staleness": c.staleness,
                    "num_examples": c.num_examples,
                }
            )
            arrays.update({f"{HELD_PREFIX}{i}/{k}": np.asarray(v) for k, v in c.arrays.items()})
        return {
            "members": list(self.members),
            "held": meta,
            "arrivals": list(self._arrivals),
        }, arrays

    def restore(self, scalars: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.members = [str(w) for w in scalars.get("members", [])]
        self._arrivals.clear()
        self._arrivals.extend(str(w) for w in scalars.get("arrivals", []))
        self.held = [_held(i, meta, arrays) for i, meta in enumerate(scalars.get("held", []))]


def _held(index: int, meta: Mapping[str, object], arrays: Mapping[str, np.ndarray]) -> Contribution:
    prefix = f"{HELD_PREFIX}{index}/"
    return Contribution(
        update_id=str(meta["update_id"]),
        worker_id=str(meta["worker_id"]),
        staleness=int(meta["staleness"]),  # type: ignore[call-overload]
        num_examples=int(meta["num_examples"]),  # type: ignore[call-overload]
        arrays={k[len(prefix) :]: np.array(v) for k, v in arrays.items() if k.startswith(prefix)},
    )
