"""The centralised ceiling: the task's 1-D CNN trained on all of MNIST-1D's training set at once."""

from __future__ import annotations

import time
from dataclasses import dataclass

from schemas.messages import TrainConfig
from torchtrain.mnist1d import BATCH_SIZE, build_trainer
from training.trainer import TrainerContext


@dataclass(frozen=True)
class CeilingRun:
    seed: int
    accuracies: list[float]  # test accuracy after each epoch
    seconds: float


def task_context(samples: int, *, num_partitions: int = 1, model_seed: int = 0) -> TrainerContext:
    """The task as a federation of ``num_partitions`` sees it (one partition: all the data)."""
    options = {"samples": samples, "partition": "iid" if num_partitions == 1 else "dirichlet"}
    return TrainerContext("simulator", 0, num_partitions, 0, options, model_seed=model_seed)


def centralised(seed: int, epochs: int, samples: int, learning_rate: float) -> CeilingRun:
    """SGD on the whole training set, ``epochs`` epochs, from the seed's initial model."""
    trainer = build_trainer(task_context(samples, model_seed=seed), batch_size=BATCH_SIZE)
    trainer.seed = seed
    config = TrainConfig(local_epochs=1, learning_rate=learning_rate)
    weights = trainer.initial_weights()
    accuracies, started = [], time.monotonic()
    for _ in range(epochs):
        weights = trainer.fit(weights, config).weights
        accuracies.append(float(trainer.evaluate(weights, config).metrics["accuracy"]))
    return CeilingRun(seed, accuracies, time.monotonic() - started)
