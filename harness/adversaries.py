"""Byzantine workers for the simulated robustness table (``bench.robustness``).

Each adversary wraps an honest trainer on its own partition and decides what
to report, as a compromised worker could. Omniscient attacks (ALIE, inner
product manipulation) also see what the honest workers would send from the
same model: the worst case the literature evaluates robust rules against.

* ``flip``: the negated honest delta; ``scaled-flip``: x -2.9, just under a
  norm bound of 3 x the median.
* ``alie`` (Baruch et al., 2019): mu - z sigma per coordinate over the honest
  deltas, z from the paper's z_max for n workers and f attackers.
* ``ipm`` (Xie et al., 2020): -epsilon x the honest mean delta.
* ``noise``: Gaussian noise as the delta.
* ``label-flip``: honest training on its own data with labels y -> C - 1 - y.
* ``inflate``: the negated delta, claiming 2^40 examples.
* ``base-lie``: an old model (sent to it ``LIE_AGE`` fits ago) reported as
  trained on the current version, i.e. replayed as fresh.
* ``replay``: its first honest delta, re-sent with every new update.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from schemas.messages import TrainConfig
from tasks.builtin import BuiltinTrainer
from training.trainer import EvalResult, FitResult
from training.weights import Weights

ATTACKS = (
    "flip",
    "scaled-flip",
    "alie",
    "ipm",
    "noise",
    "label-flip",
    "inflate",
    "base-lie",
    "replay",
)
SCALED_FLIP = -2.9
IPM_EPSILON = 0.5
NOISE_STD = 1.0
INFLATED = 2**40
LIE_AGE = 10


def alie_z(workers: int, attackers: int) -> float:
    """z_max of Baruch et al.: s = floor(n/2 + 1) - f supporters needed; z = Phi^-1((n - s)/n)."""
    supporters = workers // 2 + 1 - attackers
    return NormalDist().inv_cdf((workers - supporters) / workers)


def label_flipped(trainer: BuiltinTrainer) -> BuiltinTrainer:
    """The same trainer on its own data with every label mirrored (y -> C - 1 - y)."""
    data = trainer.data
    train = dataclasses.replace(data.train, y=(data.n_classes - 1 - data.train.y))
    return dataclasses.replace(trainer, data=dataclasses.replace(data, train=train))


def _delta(base: Weights, trained: Weights) -> Weights:
    return {k: np.asarray(trained[k], np.float64) - base[k] for k in base}


def _apply(base: Weights, delta: Weights) -> Weights:
    return {k: (base[k] + delta[k]).astype(base[k].dtype) for k in base}


@dataclass
class Adversary:
    """A worker that reports ``attack``'s version of its honest result."""

    honest: BuiltinTrainer
    attack: str
    peers: list[BuiltinTrainer] = field(default_factory=list)
    attackers: int = 2
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))
    _seen: deque[Weights] = field(default_factory=lambda: deque(maxlen=LIE_AGE))
    _first: Weights | None = None

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise ValueError(f"unknown attack {self.attack!r}")
        if self.attack == "label-flip":
            self.honest = label_flipped(self.honest)

    def initial_weights(self) -> Weights:
        return self.honest.initial_weights()

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult:
        return self.honest.evaluate(weights, config)

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult:
        base = {k: np.array(v) for k, v in weights.items()}
        result = self.honest.fit(weights, config)
        delta = _delta(base, result.weights)
        self._seen.append(base)
        if self._first is None:
            self._first = delta
        reported, examples = self._corrupt(base, delta, config), result.num_examples
        if self.attack == "inflate":
            examples = INFLATED
        return FitResult(reported, examples, result.metrics)

    def _corrupt(self, base: Weights, delta: Weights, config: TrainConfig) -> Weights:
        attack = self.attack
        if attack in ("flip", "inflate"):
            return _apply(base, {k: -d for k, d in delta.items()})
        if attack == "scaled-flip":
            return _apply(base, {k: SCALED_FLIP * d for k, d in delta.items()})
        if attack == "noise":
            return _apply(
                base, {k: self.rng.normal(0, NOISE_STD, d.shape) for k, d in delta.items()}
            )
        if attack == "base-lie":
            return self._seen[0]  # the oldest model it remembers, claimed as trained on this one
        if attack == "replay":
            return _apply(base, self._first or delta)
        if attack in ("alie", "ipm"):
            return _apply(base, self._omniscient(base, config))
        return _apply(base, delta)  # label-flip: the honest result of poisoned data

    def _omniscient(self, base: Weights, config: TrainConfig) -> Weights:
        honest = [_delta(base, p.fit(dict(base), config).weights) for p in self.peers]
        mean = {k: np.mean([d[k] for d in honest], axis=0) for k in base}
        if self.attack == "ipm":
            return {k: -IPM_EPSILON * m for k, m in mean.items()}
        z = alie_z(len(self.peers) + self.attackers, self.attackers)
        std = {k: np.std([d[k] for d in honest], axis=0) for k in base}
        return {k: mean[k] - z * std[k] for k in base}
