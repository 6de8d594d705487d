"""At most one contribution per worker in each buffer; a second one waits for the next buffer.

User-level DP needs it (one worker's influence on a release is one clipped
update), and so does robust aggregation (a fast attacker must not fill a
buffer beyond its share of workers). A third contribution while one is held
is refused, so what is held stays bounded by the number of workers.
"""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np

from aggregator.strategy import Contribution
from aggregator.validation import Rejected

HELD_PREFIX = "held/"


class BufferMembership:
    """Who is in the buffer being filled, and the contributions held for the next one."""

    def __init__(self, per_buffer: int) -> None:
        if per_buffer < 1:
            raise ValueError("per_buffer must be at least 1")
        self.per_buffer = per_buffer
        self.members: list[str] = []
        self.held: list[Contribution] = []

    def refuse(self, worker_id: str) -> Rejected | None:
        """A third contribution while one is in the buffer and one is held."""
        if worker_id in self.members and any(h.worker_id == worker_id for h in self.held):
            return Rejected("participation-limit", f"{worker_id} already has an update in this buffer and one held")
        return None

    def must_wait(self, worker_id: str) -> bool:
        """True when ``worker_id`` is already in the buffer: hold its contribution."""
        return worker_id in self.members

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
            candidate = next((h for h in self.held if h.worker_id not in self.members), None)
            if candidate is None:
                return
            self.held.remove(candidate)
            yield candidate

    def state(self) -> tuple[dict[str, object], dict[str, np.ndarray]]:
        meta = []
        arrays: dict[str, np.ndarray] = {}
        for i, c in enumerate(self.held):
            meta.append({"update_id": c.update_id, "worker_id": c.worker_id, "staleness": c.staleness, "num_examples": c.num_examples})
            arrays.update({f"{HELD_PREFIX}{i}/{k}": np.asarray(v) for k, v in c.arrays.items()})
        return {"members": list(self.members), "held": meta}, arrays

    def restore(self, scalars: Mapping[str, object], arrays: Mapping[str, np.ndarray]) -> None:
        self.members = [str(w) for w in scalars.get("members", [])]  # type: ignore[union-attr]
        self.held = [_held(i, meta, arrays) for i, meta in enumerate(scalars.get("held", []))]  # type: ignore[arg-type]


def _held(index: int, meta: Mapping[str, object], arrays: Mapping[str, np.ndarray]) -> Contribution:
    prefix = f"{HELD_PREFIX}{index}/"
    return Contribution(
        update_id=str(meta["update_id"]),
        worker_id=str(meta["worker_id"]),
        staleness=int(meta["staleness"]),  # type: ignore[call-overload]
        num_examples=int(meta["num_examples"]),  # type: ignore[call-overload]
        arrays={k[len(prefix) :]: np.array(v) for k, v in arrays.items() if k.startswith(prefix)},
    )
