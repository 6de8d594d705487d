"""A trainer of your own, run as a federation from Python.

Each worker holds a private slice of a linear-regression problem (y = X·w* + noise, with
a different input distribution per worker); it fits with a few epochs of mini-batch SGD
and never shares its rows. The aggregator evaluates on a held-out set of its own.

    AMQP_URL=amqp://guest:guest@localhost:5672/%2F python examples/custom_trainer.py
"""

from __future__ import annotations

import os
import tempfile
import uuid

import numpy as np

from fedmq.api import AggregatorSettings, TrainerContext, run
from schemas.messages import TrainConfig
from training.trainer import EvalResult, FitResult
from training.weights import Weights

FEATURES = 8
TRUE_WEIGHTS = np.linspace(-1.0, 1.0, FEATURES)


class LinearRegression:
    """Least squares on this process's rows: ``w`` (features) and ``b`` (intercept)."""

    def __init__(self, context: TrainerContext) -> None:
        rng = np.random.default_rng([context.seed, context.partition, context.role == "worker"])
        shift = context.partition - context.num_partitions / 2  # a different region per worker
        self.x = rng.normal(shift / 4, 1.0, size=(400, FEATURES))
        self.y = self.x @ TRUE_WEIGHTS + 0.5 + rng.normal(0, 0.1, size=400)
        self.seed = context.model_seed

    def initial_weights(self) -> Weights:
        rng = np.random.default_rng(self.seed)
        return {"w": rng.normal(0, 0.01, FEATURES), "b": np.zeros(1)}

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult:
        w, b = weights["w"].copy(), weights["b"].copy()
        rng = np.random.default_rng()
        for _ in range(config.local_epochs):
            order = rng.permutation(len(self.y))
            for start in range(0, len(order), config.batch_size):
                rows = order[start : start + config.batch_size]
                error = self.x[rows] @ w + b - self.y[rows]
                w -= config.learning_rate * self.x[rows].T @ error / len(rows)
                b -= config.learning_rate * np.array([error.mean()])
        return FitResult({"w": w, "b": b}, num_examples=len(self.y))

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult:
        error = self.x @ weights["w"] + weights["b"] - self.y
        mse = float(np.mean(error**2))
        return EvalResult(loss=mse, num_examples=len(self.y), metrics={"mse": mse})


def main() -> None:
    namespace = os.environ.get("FEDMQ_EXAMPLE_NAMESPACE", f"example-{uuid.uuid4().hex[:8]}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = AggregatorSettings(
            namespace=namespace,
            strategy="fedasync",
            num_partitions=3,
            learning_rate=0.05,
            max_versions=60,
            run_dir=f"{tmp}/run",
            state_dir=f"{tmp}/state",
        )
        result = run(settings, trainer=LinearRegression, workers=3, cleanup=True)
    summary = result.summary
    print(f"stopped because: {summary.stopped_because}")
    print(
        f"version {summary.version}, {summary.applied} updates applied, test MSE {summary.loss:.4f}"
    )
    for worker_id, stats in sorted(result.workers.items()):
        print(f"  {worker_id}: {stats.updates_confirmed} updates confirmed")


if __name__ == "__main__":
    main()
