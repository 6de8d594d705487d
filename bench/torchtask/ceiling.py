"""The centralised ceiling: a torch task's CNN trained on all of its training set at once (the 1-D
CNN on MNIST-1D, or with ``task="mnist"`` the 2-D CNN on the MNIST images).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from schemas.messages import TrainConfig
from torchtrain import mnist, mnist1d
from torchtrain.mnist1d import BATCH_SIZE
from torchtrain.trainer import TorchTrainer
from training.trainer import TrainerContext

#: The torch tasks by name: ``build_trainer(ctx, *, batch_size, dpsgd, channels)``.
BUILDERS: dict[str, Callable[..., TorchTrainer]] = {
    "mnist1d": mnist1d.build_trainer,
    "mnist": mnist.build_trainer,
}


@dataclass(frozen=True)
class CeilingRun:
    seed: int
    accuracies: list[float]  # test accuracy after each epoch
    seconds: float


def task_context(samples: int, *, num_partitions: int = 1, model_seed: int = 0) -> TrainerContext:
    """The task as a federation of ``num_partitions`` sees it (one partition: all the data)."""
    options = {"samples": samples, "partition": "iid" if num_partitions == 1 else "dirichlet"}
    return TrainerContext("simulator", 0, num_partitions, 0, options, model_seed=model_seed)


def centralised(
    seed: int, epochs: int, samples: int, learning_rate: float, task: str = "mnist1d"
) -> CeilingRun:
    """SGD on the whole training set, ``epochs`` epochs, from the seed's initial model."""
    build = BUILDERS[task]
    trainer = build(task_context(samples, model_seed=seed), batch_size=BATCH_SIZE)
    trainer.seed = seed
    config = TrainConfig(local_epochs=1, learning_rate=learning_rate)
    weights = trainer.initial_weights()
    accuracies, started = [], time.monotonic()
    for _ in range(epochs):
        weights = trainer.fit(weights, config).weights
        accuracies.append(float(trainer.evaluate(weights, config).metrics["accuracy"]))
    return CeilingRun(seed, accuracies, time.monotonic() - started)
