"""The built-in trainer: a NumPy model (logreg or MLP) on bundled or generated data.

Options (``TrainerContext.options``): ``dataset`` (digits | synthetic),
``model`` (logreg | mlp), ``partition`` (iid | dirichlet), ``dirichlet_alpha``,
``synthetic_alpha``, ``synthetic_beta``, ``hidden``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from schemas.messages import TrainConfig
from worker.data import Dataset, FederatedData
from worker.data.digits import load_digits_dataset, stratified_split
from worker.data.partition import dirichlet_partition, iid_partition
from worker.data.synthetic import N_CLASSES, N_FEATURES, split_user, synthetic_users
from worker.models import Model, get_model
from worker.models.losses import cross_entropy, softmax
from worker.sgd import sgd
from worker.trainer import EvalResult, FitResult, TrainerContext, Weights

TEST_FRACTION = 0.2


def federated_data(ctx: TrainerContext) -> FederatedData:
    """This context's training partition and the common test set, from the options."""
    options = tuple(sorted(ctx.options.items()))
    parts, test, n_features, n_classes = _partitioned(options, ctx.num_partitions, ctx.seed)
    return FederatedData(parts[ctx.partition], test, n_features, n_classes)


@functools.lru_cache(maxsize=4)
def _partitioned(options: tuple[tuple[str, object], ...], num_partitions: int, seed: int) -> tuple[list[Dataset], Dataset, int, int]:
    """Every partition at once, cached: a simulator builds thousands of trainers on one split."""
    opts = dict(options)
    dataset = str(opts.get("dataset", "digits"))
    if dataset == "digits":
        train, test = stratified_split(load_digits_dataset(), TEST_FRACTION, seed)
        if opts.get("partition", "dirichlet") == "iid":
            parts = iid_partition(len(train), num_partitions, seed)
        else:
            alpha = float(opts.get("dirichlet_alpha", 0.5))  # type: ignore[arg-type]
            parts = dirichlet_partition(train.y, num_partitions, alpha, seed)
        return [train.subset(p) for p in parts], test, train.x.shape[1], 10
    if dataset == "synthetic":
        users = synthetic_users(
            num_partitions,
            float(opts.get("synthetic_alpha", 0.5)),  # type: ignore[arg-type]
            float(opts.get("synthetic_beta", 0.5)),  # type: ignore[arg-type]
            seed,
            iid=bool(opts.get("synthetic_iid", False)),
        )
        splits = [split_user(u, TEST_FRACTION, seed + i) for i, u in enumerate(users)]
        test = Dataset(np.concatenate([s[1].x for s in splits]), np.concatenate([s[1].y for s in splits]))
        return [s[0] for s in splits], test, N_FEATURES, N_CLASSES
    raise ValueError(f"unknown dataset {dataset!r} (choose digits or synthetic)")


def evaluate_model(model: Model, weights: Weights, data: Dataset) -> EvalResult:
    """Cross-entropy loss and accuracy of ``weights`` on ``data``."""
    probs = softmax(model.logits(weights, data.x))
    accuracy = float(np.mean(np.argmax(probs, axis=1) == data.y)) if len(data) else 0.0
    return EvalResult(cross_entropy(probs, data.y), len(data), {"accuracy": accuracy})


@dataclass
class BuiltinTrainer:
    """SGD on this worker's partition; evaluation on the held-out test set."""

    model: Model
    data: FederatedData
    seed: int
    partition: int
    _fits: int = 0

    def initial_weights(self) -> Weights:
        rng = np.random.default_rng(self.seed)
        return self.model.init(rng, self.data.n_features, self.data.n_classes)

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult:
        rng = np.random.default_rng([self.seed, self.partition, self._fits])
        self._fits += 1
        result = sgd(
            self.model,
            weights,
            self.data.train,
            epochs=config.local_epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            rng=rng,
        )
        return FitResult(result.weights, len(self.data.train), {"train_loss": result.mean_loss, "steps": result.steps})

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult:
        return evaluate_model(self.model, weights, self.data.test)


def make_trainer(ctx: TrainerContext) -> BuiltinTrainer:
    """Factory for ``--trainer builtin``."""
    opts: Mapping[str, object] = ctx.options
    model = get_model(str(opts.get("model", "logreg")), hidden=int(opts.get("hidden", 64)))  # type: ignore[arg-type]
    return BuiltinTrainer(model, federated_data(ctx), ctx.seed, ctx.partition)
