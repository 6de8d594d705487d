"""Trajectory trust: a worker whose net contribution opposes the model's progress is left out.

A robust rule for FedBuff's buffer (``--aggregation trajectory``), judging
workers by their history rather than one update at a time. On non-IID data a
single honest delta often points away from the others (each worker pulls
towards its own classes), so per-buffer rules either drop honest outliers or
let attackers in. What an honest worker sends *over time*, though, adds up to
a push that agrees with where the federation has taken the model, whereas
an attack built to undo progress adds up to the opposite: inner-product
manipulation (-epsilon x the honest mean), a rollback to an old model claimed
as trained on the current one (its delta is minus the recent trajectory), or
a sign flip of the consensus.

Per release:

1. one vote per worker: the mean of its rows in the buffer (a fast worker with
   two places is still one vote);
2. every vote is clipped to the median vote norm (no vote moves the model
   further than a typical one);
3. each vote is added to its worker's history (everything it sent, trusted
   or not, so an excluded worker is judged on what it keeps sending);
4. the release is the mean of the trusted votes, and is added to the
   trajectory (the model's total displacement under this rule).

A worker is trusted when its score is positive and at least half the median
worker's score. The score is the cosine between its history and the
trajectory *as if that worker had always been trusted with an equal share*:
the part of the trajectory it actually contributed is replaced by 1/n of its
history (n workers with a history). Without that, a worker's own past
releases would vouch for it: an attacker let in by the first release stays
in on its own contribution, and an honest worker left out once never gets
back. With it, being trusted gives no head start and being left out no
handicap. The first release (no trajectory yet) takes every vote; nobody
trusted makes a zero release.

Known limit: trust is relative to what the other workers did. An attacker
whose data nobody else holds (a flip of classes only it has) opposes no one
and is not told from an honest outlier; so is a worker whose pull is
orthogonal to everyone else's (random noise, at most the median vote norm).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: A vote scored below this fraction of the median worker's score is not trusted.
TRUST_FRACTION = 0.5
_HISTORY = "history/"
_APPLIED = "applied/"
_TRAJECTORY = "trajectory"


def worker_votes(stack: np.ndarray, members: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """One row per distinct worker: the mean of its rows, workers in order of first appearance."""
    if len(members) != stack.shape[0]:
        raise ValueError(f"{len(members)} members for {stack.shape[0]} rows")
    names = list(dict.fromkeys(members))
    rows = np.asarray(members)
    votes = np.stack([stack[rows == name].mean(axis=0) for name in names])
    return names, votes


def clip_to_median(votes: np.ndarray) -> np.ndarray:
    """Every row shrunk to at most the median row norm."""
    norms = np.sqrt(np.einsum("ij,ij->i", votes, votes))
    cap = float(np.median(norms))
    scale = np.minimum(1.0, cap / np.maximum(norms, np.finfo(np.float64).tiny))
    clipped: np.ndarray = votes * scale[:, None]
    return clipped


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """cos(a, b); 0 when either is the zero vector."""
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator > 0 else 0.0


def trusted(scores: Mapping[str, float], fraction: float = TRUST_FRACTION) -> set[str]:
    """Workers whose score is positive and at least ``fraction`` x the median score."""
    if not scores:
        return set()
    median = float(np.median(np.fromiter(scores.values(), float)))
    return {w for w, s in scores.items() if s > 0 and s >= fraction * median}


class TrajectoryTrust:
    """Histories per worker and the trajectory; ``combine`` makes one release."""

    def __init__(self, fraction: float = TRUST_FRACTION) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("the trust fraction must be in [0, 1]")
        self.fraction = fraction
        self.histories: dict[str, np.ndarray] = {}
        self.applied: dict[str, np.ndarray] = {}
        self.trajectory: np.ndarray | None = None
        self.last_trusted: set[str] = set()

    def scores(self) -> dict[str, float]:
        """cos(history, trajectory - own applied part + history / n) per worker ({} before the
        first release).
        """
        if self.trajectory is None:
            return {}
        n = len(self.histories)
        zero = np.zeros_like(self.trajectory)
        return {
            w: cosine(h, self.trajectory - self.applied.get(w, zero) + h / n)
            for w, h in self.histories.items()
        }

    def combine(self, stack: np.ndarray, members: Sequence[str]) -> np.ndarray:
        """The release for a (K, D) buffer whose row i came from ``members[i]``."""
        names, votes = worker_votes(np.asarray(stack, np.float64), members)
        votes = clip_to_median(votes)
        for name, vote in zip(names, votes, strict=True):
            previous = self.histories.get(name)
            self.histories[name] = vote.copy() if previous is None else previous + vote
        if self.trajectory is None or not self.trajectory.any():
            keep = set(names)
        else:
            keep = trusted(self.scores(), self.fraction)
        self.last_trusted = keep
        mask = np.array([name in keep for name in names])
        if not mask.any():
            step = np.zeros(votes.shape[1])
        else:
            step = votes[mask].mean(axis=0)
            for name, vote in zip(np.asarray(names)[mask], votes[mask], strict=True):
                part = vote / mask.sum()
                previous = self.applied.get(str(name))
                self.applied[str(name)] = part if previous is None else previous + part
        self.trajectory = step.copy() if self.trajectory is None else self.trajectory + step
        return step

    def state(self) -> tuple[list[str], dict[str, np.ndarray]]:
        """Worker ids (in order) and arrays to checkpoint."""
        workers = list(self.histories)
        arrays = {f"{_HISTORY}{i}": self.histories[w] for i, w in enumerate(workers)}
        arrays.update(
            {f"{_APPLIED}{i}": self.applied[w] for i, w in enumerate(workers) if w in self.applied}
        )
        if self.trajectory is not None:
            arrays[_TRAJECTORY] = self.trajectory
        return workers, arrays

    def restore(self, workers: Sequence[str], arrays: Mapping[str, np.ndarray]) -> None:
        self.histories = {
            str(w): np.array(arrays[f"{_HISTORY}{i}"], np.float64) for i, w in enumerate(workers)
        }
        self.applied = {
            str(w): np.array(arrays[f"{_APPLIED}{i}"], np.float64)
            for i, w in enumerate(workers)
            if f"{_APPLIED}{i}" in arrays
        }
        saved = arrays.get(_TRAJECTORY)
        self.trajectory = None if saved is None else np.array(saved, np.float64)
