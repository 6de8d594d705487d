"""``TorchTrainer``: any ``torch.nn.Module`` with a loss, an optimizer factory and DataLoaders as
a fedmq trainer.

What travels is the module's whole ``state_dict`` (``torchtrain.state``). Float
entries, parameters and buffers alike (BatchNorm's running statistics), are
trained here and aggregated by every strategy. Non-float entries (BatchNorm's
int64 ``num_batches_tracked``) belong to the aggregator: a fit hands back the
values it was given, so a delta is zero there, and every strategy keeps the
aggregator's value whatever a worker sends (``aggregator.core.arithmetic``).
Deltas for FedBuff are made by the worker from the returned weights.

Randomness (shuffling, dropout, DP noise) comes from torch's generator, seeded
afresh at every fit from ``(seed, fit number)``: a trainer built with the same
seed makes the same fits. With DP-SGD the seed is OS entropy unless the DP
configuration fixes one (tests only: predictable noise protects nothing).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader

from schemas.messages import MetricValue, TrainConfig
from torchtrain.dpsgd import DpSgdConfig, PrivateTraining
from torchtrain.state import load_module_weights, module_weights
from training.trainer import EvalResult, FitResult
from training.weights import Weights

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``factory(parameters, learning_rate) -> optimizer``; called once per fit (fresh optimizer state,
#: as in FedAvg), or once for the trainer's life under DP-SGD (Opacus wraps it).
OptimizerFactory = Callable[[Iterable[torch.nn.Parameter], float], torch.optim.Optimizer]
Batches = DataLoader[tuple[torch.Tensor, torch.Tensor]]

#: Intra-op threads per trainer: a machine usually runs several workers, and torch's default (one
#: per core each) makes them fight over the cores.
DEFAULT_THREADS = 1


def sgd(parameters: Iterable[torch.nn.Parameter], learning_rate: float) -> torch.optim.Optimizer:
    """Plain SGD, the default optimizer factory."""
    return torch.optim.SGD(parameters, lr=learning_rate)


@dataclass(frozen=True)
class Pass:
    """What one pass over a loader saw: summed loss, examples, correct predictions, steps."""

    loss_sum: float = 0.0
    examples: int = 0
    correct: int = 0
    steps: int = 0

    def mean_loss(self) -> float:
        return self.loss_sum / self.examples if self.examples else 0.0


def train_pass(
    module: torch.nn.Module, optimizer: torch.optim.Optimizer, loader: Batches, loss_fn: LossFn
) -> Pass:
    """One epoch of minibatch training."""
    module.train()
    loss_sum, examples, steps = 0.0, 0, 0
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(module(x), y)
        loss.backward()  # type: ignore[no-untyped-call]  # torch's stubs leave it untyped
        optimizer.step()
        loss_sum += float(loss.detach()) * len(y)
        examples += len(y)
        steps += 1
    return Pass(loss_sum, examples, 0, steps)


def eval_pass(module: torch.nn.Module, loader: Batches, loss_fn: LossFn) -> Pass:
    """Loss (and, for class logits, correct predictions) over a loader, without gradients."""
    module.eval()
    loss_sum, examples, correct = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            out = module(x)
            loss_sum += float(loss_fn(out, y)) * len(y)
            examples += len(y)
            if out.ndim == 2 and y.ndim == 1:
                correct += int((out.argmax(dim=1) == y).sum())
    return Pass(loss_sum, examples, correct, 0)


@dataclass
class TorchTrainer:
    """Train ``module`` on ``train_data`` (a worker) and evaluate it on ``test_data``.

    ``local_epochs`` and ``learning_rate`` come from the aggregator's train config;
    the batch size is the DataLoader's. Either loader may be ``None`` for a role
    that does not need it (the aggregator only evaluates).
    """

    module: torch.nn.Module
    train_data: Batches | None = None
    test_data: Batches | None = None
    loss: LossFn = torch.nn.functional.cross_entropy
    optimizer: OptimizerFactory = sgd
    seed: int = 0
    threads: int | None = DEFAULT_THREADS
    dpsgd: DpSgdConfig | None = None
    fits: int = 0
    private: PrivateTraining | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        if self.dpsgd is not None:
            if self.train_data is None:
                raise ValueError("DP-SGD needs the training data")
            optimizer = self.optimizer(self.module.parameters(), 0.0)
            self.private = PrivateTraining(self.module, optimizer, self.train_data, self.dpsgd)

    def initial_weights(self) -> Weights:
        return module_weights(self.module)

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult:
        if self.train_data is None:
            raise ValueError("this trainer has no training data")
        if self.private is not None:  # refused before anything changes
            self.private.check_budget(len(self.private.loader) * config.local_epochs)
        load_module_weights(self.module, weights)
        torch.manual_seed(self._fit_seed())
        self.fits += 1
        if self.private is not None:
            result, metrics = self._fit_private(self.private, config)
        else:
            optimizer = self.optimizer(self.module.parameters(), config.learning_rate)
            result = self._epochs(self.module, optimizer, self.train_data, config.local_epochs)
            loss = (
                result.mean_loss()
            )  # the wire takes finite floats: a diverged fit says so in text
            metrics = {"train_loss": loss if math.isfinite(loss) else "nan", "steps": result.steps}
        examples = max(1, result.examples // config.local_epochs)
        return FitResult(self._trained(weights), examples, metrics)

    def _fit_private(
        self, private: PrivateTraining, config: TrainConfig
    ) -> tuple[Pass, dict[str, MetricValue]]:
        """DP-SGD (``fit`` checked the budget). No training loss in the metrics: not private."""
        for group in private.optimizer.param_groups:
            group["lr"] = config.learning_rate
        result = self._epochs(
            private.module, private.optimizer, private.loader, config.local_epochs
        )
        spent = private.save()
        metrics: dict[str, MetricValue] = {
            "steps": result.steps,
            "dp_epsilon": spent if math.isfinite(spent) else "inf",  # the wire takes finite floats
            "dp_delta": private.config.delta,
            "dp_steps_total": sum(n for _, _, n in private.history),
        }
        return result, metrics

    def _epochs(
        self,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loader: Batches,
        epochs: int,
    ) -> Pass:
        total = Pass()
        for _ in range(epochs):
            one = train_pass(module, optimizer, loader, self.loss)
            total = Pass(
                total.loss_sum + one.loss_sum, total.examples + one.examples, 0,
                total.steps + one.steps,
            )  # fmt: skip
        # The last step's gradients (a model's worth; under DP-SGD also Opacus' per-example ones, a
        # batch of models) would otherwise live until the next fit's first step.
        optimizer.zero_grad(set_to_none=True)
        return total

    def _trained(self, given: Mapping[str, np.ndarray]) -> Weights:
        """The module's state after training, with non-float entries as they were given."""
        trained = module_weights(self.module)
        for name, array in trained.items():
            if array.dtype.kind != "f":
                trained[name] = np.array(given[name])
        return trained

    def _fit_seed(self) -> int:
        if self.dpsgd is not None and self.dpsgd.seed is None:
            return secrets.randbits(63)
        base = self.seed if self.dpsgd is None else int(self.dpsgd.seed or 0)
        return int(np.random.SeedSequence([base, self.fits]).generate_state(1, np.uint64)[0] >> 1)

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult:
        if self.test_data is None:
            raise ValueError("this trainer has no test data")
        load_module_weights(self.module, weights)
        result = eval_pass(self.module, self.test_data, self.loss)
        accuracy = result.correct / result.examples if result.examples else 0.0
        return EvalResult(result.mean_loss(), result.examples, {"accuracy": accuracy})
