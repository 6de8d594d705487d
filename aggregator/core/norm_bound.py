"""The norm bound (Sun et al., 2019), calibrated per worker on admitted updates only.

An update's size is ||delta||, or ||weights - current model|| for a weights
update: always measured against the *current* model, whatever base version the
worker claims, so a lie about the base (an old model replayed as fresh) is
judged by how far it would actually move the model.

Each worker votes with the median of its own last ``window`` admitted norms,
and the reference is the median of the votes: a fast worker is one vote, not
most of a window, and only a majority of *workers* can move the reference.
Refused updates never vote (they are the attacker's to choose); the first
``MIN_HISTORY`` arrivals, from at least ``min_workers`` workers, are refused
(``norm-calibrating``) and are the calibration sample. ``min_workers`` must be
more than half of the workers expected: fast attackers are the first to
arrive, and if they were most of the first voters their tiny norms would set a
reference that refuses every honest update, which then never votes. An update above
``factor`` x the reference is rejected (or, with ``action="clip"``, clipped to
it); an admitted update above ``clip_to`` x the reference is clipped to that
size, so no update moves the model further than a typical honest one whatever
it claims (a sign flip scaled to just under the bound counts as an unscaled one).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from aggregator.core.validation import Rejected
from schemas.messages import UpdateKind
from training.weights import Weights, l2_norm

NormAction = Literal["reject", "clip"]
#: Norms needed before the bound applies, and the distinct workers they must come from (a median
#: of three votes survives one liar).
MIN_HISTORY = 5
MIN_WORKERS = 3
#: Workers whose votes are remembered (least recently admitted forgotten first).
MAX_WORKERS = 10_000


def update_norm(
    arrays: Mapping[str, np.ndarray], model: Mapping[str, np.ndarray], kind: UpdateKind
) -> float:
    """How far an update would move the model: ||delta||, or ||weights - model|| for a weights
    update.
    """
    if kind == "delta":
        return l2_norm({name: arrays[name] for name in model})
    return l2_norm(arrays, model)


def clipped(
    arrays: Mapping[str, np.ndarray],
    model: Mapping[str, np.ndarray],
    kind: UpdateKind,
    scale: float,
) -> Weights:
    """The update shrunk towards 'no change' by ``scale`` (0 < scale < 1), in the model's dtypes."""
    if kind == "delta":
        return {
            name: (np.asarray(arrays[name], np.float64) * scale).astype(ref.dtype)
            for name, ref in model.items()
        }
    return {
        name: (ref + (np.asarray(arrays[name], np.float64) - ref) * scale).astype(ref.dtype)
        for name, ref in model.items()
    }


@dataclass(frozen=True)
class Screened:
    """An update that passed the bound; ``arrays`` are the original ones unless clipped.

    ``norm`` is what the worker's vote records once the update is applied (its
    size, at most the bound).
    """

    arrays: Mapping[str, np.ndarray]
    norm: float
    clipped: bool


class NormBound:
    """Reject updates over ``factor`` x the reference norm; clip admitted ones to ``clip_to`` x."""

    def __init__(
        self,
        *,
        factor: float = 3.0,
        action: NormAction = "reject",
        window: int = 10,
        clip_to: float | None = 1.0,
        min_workers: int = MIN_WORKERS,
    ) -> None:
        if factor <= 1.0:
            raise ValueError("the norm bound factor must be above 1")
        if window < 1:
            raise ValueError("the norm window must hold at least one norm per worker")
        if clip_to is not None and not 1.0 <= clip_to <= factor:
            raise ValueError("the norm clip must be between 1 and the bound factor")
        self.factor = factor
        self.action = action
        self.window = window
        self.clip_to = clip_to
        self.min_workers = max(MIN_WORKERS, min_workers)
        self._norms: OrderedDict[str, deque[float]] = OrderedDict()

    def reference(self) -> float | None:
        """The median of the workers' votes, or ``None`` while calibrating."""
        if self._count() < MIN_HISTORY or len(self._norms) < self.min_workers:
            return None
        votes = [float(np.median(np.fromiter(n, float))) for n in self._norms.values()]
        return float(np.median(votes))

    def _count(self) -> int:
        return sum(len(norms) for norms in self._norms.values())

    def bound(self) -> float | None:
        """The current limit, or ``None`` while calibrating."""
        reference = self.reference()
        return None if reference is None else self.factor * reference

    def screen(
        self,
        arrays: Mapping[str, np.ndarray],
        model: Mapping[str, np.ndarray],
        kind: UpdateKind,
        worker_id: str = "",
    ) -> Screened | Rejected:
        """Pass, clip or reject an update; call ``admit`` once it is applied."""
        norm = update_norm(arrays, model, kind)
        if not math.isfinite(norm):
            return Rejected("norm-bound", "the update's norm overflows")
        reference = self.reference()
        if reference is None:
            self._record(worker_id, norm)
            return Rejected(
                "norm-calibrating",
                f"collecting update norms for the bound: {self._count()} of {MIN_HISTORY}, "
                f"from {len(self._norms)} of {self.min_workers} workers",
            )
        limit = self.factor * reference
        if norm > limit and (self.action == "reject" or limit <= 0.0):
            return Rejected(
                "norm-bound",
                f"norm {norm:.4g} exceeds {self.factor:g} x the reference norm ({reference:.4g})",
            )
        cap = limit if self.clip_to is None else self.clip_to * reference
        if norm <= cap:
            return Screened(arrays, norm, clipped=False)
        return Screened(clipped(arrays, model, kind, cap / norm), min(norm, limit), clipped=True)

    def admit(self, worker_id: str, screened: Screened) -> None:
        """The screened update was applied: its size joins its worker's vote."""
        self._record(worker_id, screened.norm)

    def _record(self, worker_id: str, norm: float) -> None:
        norms = self._norms.pop(worker_id, None) or deque(maxlen=self.window)
        norms.append(norm)
        self._norms[worker_id] = norms
        while len(self._norms) > MAX_WORKERS:
            self._norms.popitem(last=False)

    def state(self) -> dict[str, list[float]]:
        """Each worker's remembered norms, oldest worker first (checkpointed)."""
        return {worker: list(norms) for worker, norms in self._norms.items()}

    def restore(self, saved: Mapping[str, Any] | list[float]) -> None:
        """Load ``state()``; a bare list (a checkpoint from before per-worker votes) is one
        anonymous voter's norms.
        """
        items = {"": saved} if isinstance(saved, list) else saved
        self._norms = OrderedDict(
            (str(w), deque((float(x) for x in norms), maxlen=self.window))
            for w, norms in items.items()
        )
