"""Malicious workers, as trainer plugins: ``--trainer harness.attacks:scale`` (or flip, noise, nan,
constant).

Each trains honestly on its partition, then corrupts the result before it is
sent, so the attack lands exactly where a real compromised worker's would.
``corrupt(base, trained)`` returns the weights the worker reports; the update
sent is those weights, or their delta from ``base``, as the aggregator asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from schemas.messages import TrainConfig
from tasks.builtin import BuiltinTrainer, make_trainer
from training.trainer import EvalResult, FitResult, TrainerContext
from training.weights import Weights

Corruption = Callable[[Weights, Weights, np.random.Generator], Weights]

SCALE = 100.0
FLIP = -4.0
NOISE_STD = 1.0
GARBAGE_STD = 1.0


def scaled(base: Weights, trained: Weights, factor: float) -> Weights:
    return {k: base[k] + factor * (trained[k] - base[k]) for k in base}


def _scale(base: Weights, trained: Weights, rng: np.random.Generator) -> Weights:
    return scaled(base, trained, SCALE)


def _flip(base: Weights, trained: Weights, rng: np.random.Generator) -> Weights:
    return scaled(base, trained, FLIP)


def _noise(base: Weights, trained: Weights, rng: np.random.Generator) -> Weights:
    return {
        k: base[k] + rng.normal(0.0, NOISE_STD, base[k].shape).astype(base[k].dtype) for k in base
    }


def _nan(base: Weights, trained: Weights, rng: np.random.Generator) -> Weights:
    poison = np.nan if rng.random() < 0.5 else np.inf
    return {k: np.full_like(trained[k], poison) for k in trained}


def _constant(base: Weights, trained: Weights, rng: np.random.Generator) -> Weights:
    garbage = np.random.default_rng(1234)  # the same garbage every time
    return {
        k: garbage.normal(0.0, GARBAGE_STD, base[k].shape).astype(base[k].dtype)
        for k in sorted(base)
    }


ATTACKS: dict[str, Corruption] = {
    "scale": _scale,
    "flip": _flip,
    "noise": _noise,
    "nan": _nan,
    "constant": _constant,
}


@dataclass
class Attacker:
    """An honest trainer whose every result is corrupted before it leaves the worker."""

    honest: BuiltinTrainer
    corrupt: Corruption
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))

    def initial_weights(self) -> Weights:
        return self.honest.initial_weights()

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult:
        result = self.honest.fit(weights, config)
        bad = self.corrupt(weights, result.weights, self.rng)
        return FitResult(bad, result.num_examples, result.metrics)

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult:
        return self.honest.evaluate(weights, config)


def _factory(name: str) -> Callable[[TrainerContext], Attacker]:
    def factory(ctx: TrainerContext) -> Attacker:
        return Attacker(make_trainer(ctx), ATTACKS[name])

    factory.__name__ = name
    return factory


scale = _factory("scale")
flip = _factory("flip")
noise = _factory("noise")
nan = _factory("nan")
constant = _factory("constant")
