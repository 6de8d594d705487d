"""The built-in trainer: a NumPy model (logreg or MLP) on bundled or generated data.

Options (``TrainerContext.options``): ``dataset`` (digits | mnist | synthetic),
``model`` (logreg | mlp), ``partition`` (iid | dirichlet), ``dirichlet_alpha``,
``synthetic_alpha``, ``synthetic_beta``, ``hidden``; and for record-level
DP-SGD ``dpsgd``, ``dpsgd_clip``, ``dpsgd_noise_multiplier``, ``dpsgd_delta``,
``dpsgd_accountant``, ``dpsgd_seed``, ``dpsgd_ledger``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from privacy.dpsgd import DpSgdParams, dp_sgd
from privacy.noise import entropy_generator
from privacy.spending import Spending
from schemas.messages import MetricValue, TrainConfig
from tasks.data import Dataset, FederatedData
from tasks.data.digits import load_digits_dataset, stratified_split
from tasks.data.mnist import load_mnist_dataset
from tasks.data.partition import dirichlet_partition, iid_partition
from tasks.data.synthetic import N_CLASSES, N_FEATURES, split_user, synthetic_users
from tasks.models import Model, get_model
from tasks.models.losses import cross_entropy, softmax
from tasks.sgd import sgd
from training.trainer import EvalResult, FitResult, Options, TrainerContext
from training.weights import Weights

TEST_FRACTION = 0.2
#: Datasets of labelled images, split into train and test here (stratified, under the data seed).
IMAGES = {"digits": load_digits_dataset, "mnist": load_mnist_dataset}


@dataclass(frozen=True)
class FederatedSplit:
    """Every partition's training data and the common test set."""

    parts: list[Dataset]
    test: Dataset
    n_features: int
    n_classes: int

    def data(self, partition: int) -> FederatedData:
        return FederatedData(self.parts[partition], self.test, self.n_features, self.n_classes)


def federated_split(opts: Options, num_partitions: int, seed: int) -> FederatedSplit:
    """All partitions of the configured dataset (deterministic under ``seed``)."""
    dataset = str(opts.get("dataset", "digits"))
    if dataset in IMAGES:
        train, test = stratified_split(IMAGES[dataset](), TEST_FRACTION, seed)
        if opts.get("partition", "dirichlet") == "iid":
            parts = iid_partition(len(train), num_partitions, seed)
        else:
            alpha = float(opts.get("dirichlet_alpha", 0.5))
            parts = dirichlet_partition(train.y, num_partitions, alpha, seed)
        return FederatedSplit([train.subset(p) for p in parts], test, train.x.shape[1], 10)
    if dataset == "synthetic":
        users = synthetic_users(
            num_partitions,
            float(opts.get("synthetic_alpha", 0.5)),
            float(opts.get("synthetic_beta", 0.5)),
            seed,
            iid=bool(opts.get("synthetic_iid", False)),
        )
        splits = [split_user(u, TEST_FRACTION, seed + i) for i, u in enumerate(users)]
        test = Dataset(
            np.concatenate([s[1].x for s in splits]), np.concatenate([s[1].y for s in splits])
        )
        return FederatedSplit([s[0] for s in splits], test, N_FEATURES, N_CLASSES)
    raise ValueError(f"unknown dataset {dataset!r} (choose digits, mnist or synthetic)")


@functools.lru_cache(maxsize=4)
def _cached_split(
    options: tuple[tuple[str, str | int | float | bool], ...], num_partitions: int, seed: int
) -> FederatedSplit:
    """Cached: a simulator builds thousands of trainers on one split."""
    return federated_split(dict(options), num_partitions, seed)


def federated_data(ctx: TrainerContext) -> FederatedData:
    """This context's training partition and the common test set, from the options."""
    return _cached_split(tuple(sorted(ctx.options.items())), ctx.num_partitions, ctx.seed).data(
        ctx.partition
    )


def evaluate_model(model: Model, weights: Weights, data: Dataset) -> EvalResult:
    """Cross-entropy loss and accuracy of ``weights`` on ``data``."""
    probs = softmax(model.logits(weights, data.x))
    accuracy = float(np.mean(np.argmax(probs, axis=1) == data.y)) if len(data) else 0.0
    return EvalResult(cross_entropy(probs, data.y), len(data), {"accuracy": accuracy})


@dataclass
class DpSgdSetup:
    """Record-level DP for one worker: the mechanism, its randomness, and its own spending."""

    params: DpSgdParams
    spending: Spending
    rng: np.random.Generator


def dpsgd_setup(opts: Options) -> DpSgdSetup | None:
    """From the trainer options; ``None`` when DP-SGD is off."""
    if not opts.get("dpsgd"):
        return None
    if opts.get("dpsgd_target_epsilon") is not None:
        raise ValueError(
            "--dpsgd-target-epsilon is for the torch trainer; the built-in one reports"
        )
    seed = opts.get("dpsgd_seed")
    ledger = opts.get("dpsgd_ledger")
    return DpSgdSetup(
        params=DpSgdParams(
            float(opts.get("dpsgd_clip", 1.0)), float(opts.get("dpsgd_noise_multiplier", 1.0))
        ),
        spending=Spending(
            delta=float(opts.get("dpsgd_delta", 1e-5)),
            accountant="pld" if opts.get("dpsgd_accountant") == "pld" else "rdp",
            path=str(ledger) if ledger else None,
        ),
        rng=entropy_generator(int(seed) if seed is not None else None),
    )


def finite_metric(value: float) -> MetricValue:
    """Metrics must be finite on the wire: infinity (no noise) travels as the string "inf"."""
    return value if math.isfinite(value) else "inf"


@dataclass
class BuiltinTrainer:
    """SGD (or DP-SGD) on this worker's partition; evaluation on the held-out test set."""

    model: Model
    data: FederatedData
    seed: int
    partition: int
    dpsgd: DpSgdSetup | None = None
    model_seed: int = 0
    _fits: int = 0

    def initial_weights(self) -> Weights:
        rng = np.random.default_rng(self.model_seed)
        return self.model.init(rng, self.data.n_features, self.data.n_classes)

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult:
        if self.dpsgd is not None:
            return self._fit_private(weights, config, self.dpsgd)
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
        return FitResult(
            result.weights,
            len(self.data.train),
            {"train_loss": result.mean_loss, "steps": result.steps},
        )

    def _fit_private(self, weights: Weights, config: TrainConfig, dp: DpSgdSetup) -> FitResult:
        """DP-SGD, charged to this worker's own ledger. No training loss is reported: it is not
        private.
        """
        train = self.data.train
        result = dp_sgd(
            self.model,
            weights,
            train.x,
            train.y,
            epochs=config.local_epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            params=dp.params,
            rng=dp.rng,
        )
        spent = dp.spending.charge(result.event, result.steps)
        metrics: dict[str, MetricValue] = {
            "steps": result.steps,
            "dp_epsilon": finite_metric(spent),
            "dp_delta": dp.spending.delta,
            "dp_steps_total": dp.spending.ledger.total(),
        }
        return FitResult(result.weights, len(train), metrics)

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult:
        return evaluate_model(self.model, weights, self.data.test)


def make_trainer(ctx: TrainerContext) -> BuiltinTrainer:
    """Factory for ``--trainer builtin``."""
    opts: Options = ctx.options
    model = get_model(str(opts.get("model", "logreg")), hidden=int(opts.get("hidden", 64)))
    return BuiltinTrainer(
        model,
        federated_data(ctx),
        ctx.seed,
        ctx.partition,
        dpsgd_setup(opts),
        model_seed=ctx.model_seed,
    )
