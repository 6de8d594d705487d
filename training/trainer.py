"""The trainer contract: ``fit`` and ``evaluate`` on named arrays, for every role.

Workers fit, the aggregator evaluates and makes the initial weights, the
simulator does both. Plug in your own trainer with ``--trainer
package.module:factory`` where ``factory(context: TrainerContext) -> Trainer``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from schemas.messages import MetricValue, TrainConfig
from training.weights import Weights

Role = Literal["worker", "aggregator", "simulator"]
#: Trainer-specific options (the task settings' ``trainer_options``).
Options = Mapping[str, str | int | float | bool]


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
    """Who asks for a trainer: a worker for its partition, or the aggregator for the test set."""

    role: Role
    partition: int
    num_partitions: int
    seed: int
    options: Options = field(default_factory=dict)
    model_seed: int = (
        0  # seeds ``initial_weights``; ``seed`` seeds the data split, identical everywhere
    )


@runtime_checkable
class Trainer(Protocol):
    """A model with local data. ``initial_weights`` is only called on the aggregator."""

    def initial_weights(self) -> Weights: ...

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult: ...

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult: ...


TrainerFactory = Callable[[TrainerContext], Trainer]
