"""A bound on self-reported example counts: nobody counts for more than ``factor`` x the median.

``num_examples`` is whatever the worker says; weighting by it unchecked lets one
update claiming 2^40 examples hold all of a buffer's weight. The cap keeps the
latest admitted claim of each worker (one vote per worker, so a fast liar is
one voice among the workers) and allows a claim up to ``factor`` x the median of
those votes. Until ``min_workers`` workers have had a claim admitted there is no
median to trust and every claim counts as one example (unit weight): the first
arrivals of a run are the ones an attacker would otherwise decide alone.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

#: Workers whose claims must be known before the median means anything (a median of three
#: survives one liar).
MIN_WORKERS = 3


class ExampleCap:
    """Caps a claimed count at ``factor`` x the median of the workers' latest admitted claims."""

    def __init__(self, *, factor: float = 2.0, max_workers: int = 10_000) -> None:
        if factor < 1.0:
            raise ValueError("the example cap factor must be at least 1")
        self.factor = factor
        self.max_workers = max_workers
        self._claims: OrderedDict[str, int] = OrderedDict()

    def cap(self) -> int | None:
        """The largest count any update may carry now, or ``None`` while calibrating."""
        if len(self._claims) < MIN_WORKERS:
            return None
        median = float(np.median(np.fromiter(self._claims.values(), float)))
        return max(1, math.floor(self.factor * median))

    def allowed(self, claim: int) -> int:
        """The count to weigh an update by: its claim, capped (1 while calibrating)."""
        cap = self.cap()
        return 1 if cap is None else min(claim, cap)

    def admit(self, worker_id: str, claim: int) -> None:
        """Record the claim of an update that was applied (refused updates never vote)."""
        self._claims[worker_id] = int(claim)
        self._claims.move_to_end(worker_id)
        while len(self._claims) > self.max_workers:
            self._claims.popitem(last=False)

    def state(self) -> dict[str, int]:
        return dict(self._claims)

    def restore(self, claims: dict[str, int]) -> None:
        self._claims = OrderedDict((str(w), int(n)) for w, n in claims.items())
