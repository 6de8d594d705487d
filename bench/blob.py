"""A trainer whose model is one float32 vector of ``BENCH_MODEL_FLOATS`` elements (for size
benchmarks).

``fit`` adds a small seeded step; ``evaluate`` is nearly free, so what is
measured is fedmq moving and applying the model, not learning.
"""

from __future__ import annotations

import os

import numpy as np

from schemas.messages import TrainConfig
from training.trainer import EvalResult, FitResult, TrainerContext
from training.weights import Weights

FLOATS_ENV = "BENCH_MODEL_FLOATS"


class BlobTrainer:
    def __init__(self, floats: int, seed: int) -> None:
        self.floats = floats
        self.rng = np.random.default_rng(seed)

    def initial_weights(self) -> Weights:
        return {"w": np.zeros(self.floats, np.float32)}

    def fit(self, weights: Weights, config: TrainConfig) -> FitResult:
        step = np.float32(self.rng.standard_normal() * 1e-3)
        return FitResult({"w": np.asarray(weights["w"]) + step}, num_examples=100)

    def evaluate(self, weights: Weights, config: TrainConfig) -> EvalResult:
        return EvalResult(
            loss=float(weights["w"][:1].sum()), num_examples=1, metrics={"accuracy": 0.0}
        )


def make_trainer(ctx: TrainerContext) -> BlobTrainer:
    return BlobTrainer(int(os.environ.get(FLOATS_ENV, "10000")), ctx.seed + ctx.partition)


def main() -> None:
    """``python -m bench.blob``: what a worker process holds for its trainer alone (same imports,
    one fit).
    """
    import worker.service  # noqa: F401  (the worker's imports, so the baseline includes them)
    from runtime.memory import tune_allocator

    tune_allocator()
    trainer = make_trainer(TrainerContext(role="worker", partition=0, num_partitions=1, seed=0))
    trainer.fit(trainer.initial_weights(), TrainConfig())


if __name__ == "__main__":
    main()
