"""Reputation: a worker whose deltas keep disagreeing with the others' is excluded.

Per-buffer rules judge one delta at a time, and on non-IID data that either
drops honest outliers or keeps attackers. With strict identity a worker
cannot shed its past (its id is its broker user), so it can be judged on
evidence gathered over many releases. At each release of the buffer:

1. one vote per worker: the mean of its rows (a fast worker is one vote);
2. each vote is scored by ``agreement_scores``: its cosine with the mean of
   the *other* votes (all clipped to the median vote norm; nobody vouches
   for itself), minus the median of those cosines, so 0 is a typical
   worker; a vote over ``OVERSIZED`` x the median norm scores as -1;
3. a worker's reputation is the running mean of its scores for its first
   1 / ``decay`` releases, then an exponential moving average with weight
   ``decay``: good behaviour long ago buys little, so a worker that turns
   attacker falls to the attack's level within about 1 / ``decay`` releases;
4. once a worker has ``evidence`` scores it is excluded when its reputation
   falls below ``threshold``, lowest first and never more than a third of
   the workers known (``most_excluded``); by default it stays excluded
   (``readmit``).

Excluded workers' updates are still scored (the latest per release), so
their reputations stay visible and, with ``readmit`` set, can climb back. Pure numpy; the state is
keyed by worker id, which is only meaningful with strict identity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aggregator.core.trajectory import clip_to_median, cosine

_REPUTATION = "reputation"
#: A vote this many times the median vote norm scores -1 (honest votes on the bench: at most 2.3).
OVERSIZED = 4.0


@dataclass(frozen=True)
class ReputationConfig:
    """How fast reputation moves and where exclusion starts and ends."""

    decay: float = 0.1
    threshold: float = -0.25
    #: ``None``: an excluded worker stays excluded (see ``still_excluded``).
    readmit: float | None = None
    evidence: int = 4

    def __post_init__(self) -> None:
        if not 0.0 < self.decay <= 1.0:
            raise ValueError("the reputation decay must be in (0, 1]")
        if not -2.0 <= self.threshold <= (2.0 if self.readmit is None else self.readmit) <= 2.0:
            raise ValueError("need -2 <= threshold <= readmit <= 2")
        if self.evidence < 1:
            raise ValueError("exclusion needs at least one score of evidence")


def agreement_scores(votes: np.ndarray) -> np.ndarray:
    """Each vote's agreement with the others, relative to the typical vote's.

    With every vote clipped to the median vote norm, a vote's raw score is its cosine with the
    mean of the *other* clipped votes (nobody vouches for itself), or -1 if the vote is more
    than ``OVERSIZED`` times the median norm (it would dominate a plain mean whatever its
    direction). The score is the raw score minus the median raw score: as a model converges,
    honest non-IID deltas agree less and less with each other, and the release's median
    follows that drift. The reference does not depend on who is excluded, so one honest worker
    excluded by bad luck cannot move it towards the rest (a feedback loop that handed the
    reference to the attackers, seen on the bench). 0 for a lone vote.
    """
    votes = np.asarray(votes, np.float64)
    count = votes.shape[0]
    if count < 2:
        return np.zeros(count)
    norms = np.sqrt(np.einsum("ij,ij->i", votes, votes))
    clipped = clip_to_median(votes)
    total = clipped.sum(axis=0)
    raw = np.array([cosine(clipped[i], (total - clipped[i]) / (count - 1)) for i in range(count)])
    raw[norms > OVERSIZED * float(np.median(norms))] = -1.0
    relative: np.ndarray = raw - float(np.median(raw))
    return relative


def moved(reputation: float | None, count: int, score: float, decay: float) -> float:
    """The reputation after its ``count``-th score: the running mean of the scores until there are
    1 / ``decay`` of them, an exponential moving average with weight ``decay`` after that.
    """
    if reputation is None:
        return score
    weight = max(decay, 1.0 / count)
    return (1.0 - weight) * reputation + weight * score


def still_excluded(excluded: bool, reputation: float, config: ReputationConfig) -> bool:
    """Out below ``threshold``; back in above ``readmit``, or never when it is ``None``.

    Never is the default: once the federation has converged, honest non-IID deltas pull away
    from each other and the negation of an attacker's own pull can look like agreement (a sign
    flipper excluded at release 5 climbed back above a readmission level of 0 by release 20 on
    the bench), whereas the early evidence, when the workers still share a direction, is clear.
    """
    if excluded:
        return config.readmit is None or reputation < config.readmit
    return reputation < config.threshold


class Reputation:
    """Reputations, score counts and the excluded set, by authenticated worker id."""

    def __init__(self, config: ReputationConfig | None = None) -> None:
        self.config = config or ReputationConfig()
        self.reputations: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.excluded: set[str] = set()

    def is_excluded(self, worker_id: str) -> bool:
        return worker_id in self.excluded

    def proven(self, worker_id: str) -> bool:
        """Enough evidence to be judged (before that a worker is never excluded)."""
        return self.counts.get(worker_id, 0) >= self.config.evidence

    def most_excluded(self) -> int:
        """At most a minority of the workers known: fewer than a third, floor((n - 1) / 3)."""
        return max(0, (len(self.reputations) - 1) // 3)

    def observe(self, names: Sequence[str], votes: np.ndarray) -> dict[str, float]:
        """Score one release's votes (excluded workers' too) and update exclusion; the scores.

        The lowest reputations below the threshold are excluded first, and never more than
        ``most_excluded``: an honest outlier is not excluded to make room beyond it.
        """
        scores = agreement_scores(votes)
        for name, score in zip(names, scores, strict=True):
            count = self.counts.get(name, 0) + 1
            reputation = moved(self.reputations.get(name), count, float(score), self.config.decay)
            self.reputations[name] = reputation
            self.counts[name] = count
            if name in self.excluded and not still_excluded(True, reputation, self.config):
                self.excluded.discard(name)
        for name in sorted(names, key=lambda n: self.reputations[n]):
            if len(self.excluded) >= self.most_excluded():
                break
            if self.proven(name) and still_excluded(False, self.reputations[name], self.config):
                self.excluded.add(name)
        return {n: float(s) for n, s in zip(names, scores, strict=True)}

    def state(self) -> dict[str, object]:
        """JSON-able scalars to checkpoint."""
        return {
            _REPUTATION: {
                w: [self.reputations[w], self.counts[w], w in self.excluded]
                for w in self.reputations
            }
        }

    def restore(self, scalars: Mapping[str, object]) -> None:
        saved = scalars.get(_REPUTATION, {})
        if not isinstance(saved, Mapping):
            raise ValueError("the checkpointed reputation must be a mapping by worker id")
        self.reputations = {str(w): float(v[0]) for w, v in saved.items()}
        self.counts = {str(w): int(v[1]) for w, v in saved.items()}
        self.excluded = {str(w) for w, v in saved.items() if bool(v[2])}
