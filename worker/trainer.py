"""The training interface every worker runs: ``fit`` and ``evaluate`` on named arrays.

Plug in your own trainer with ``--trainer package.module:factory`` where
``factory(context: TrainerContext) -> Trainer``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping, Protocol, runtime_checkable

import numpy as np

from schemas.messages import MetricValue, TrainConfig

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class FitResult:
    """What local training produced: new weights, how many examples, metrics."""

    weights: Weights
    num_examples: int
    metrics: dict[str, MetricValue] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalResult:
    """Loss (and metrics such as ``accuracy``) of some weights on local data."""

    loss: float
    num_examples: int
    metrics: dict[str, MetricValue] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainerContext:
    """Who is asking for a trainer: a worker for its partition, or the aggregator for the test set."""

    role: Literal["worker", "aggregator", "simulator"]
    partition: int
    num_partitions: int
    seed: int
    options: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    model_seed: int = 0  # seeds ``initial_weights``; ``seed`` seeds the data split, identical everywhere


@runtime_checkable
class Trainer(Protocol):
    """A model with local data. ``initial_weights`` is only called on the aggregator."""

    def initial_weights(self) -> Weights: ...

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult: ...

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult: ...


TrainerFactory = Callable[[TrainerContext], Trainer]


def load_factory(path: str) -> TrainerFactory:
    """Resolve ``builtin`` or ``package.module:attribute`` to a trainer factory."""
    if path == "builtin":
        path = "worker.builtin:make_trainer"
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"trainer {path!r} is not of the form package.module:factory")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load trainer {path!r}: {exc}") from exc
    if not callable(factory):
        raise ValueError(f"trainer {path!r} is not callable")
    return factory
