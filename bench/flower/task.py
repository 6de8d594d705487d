"""The one task both runtimes train: what every client and both servers are built from.

MNIST-1D's 1-D CNN, eight clients on a Dirichlet(0.5) label split, one local epoch of SGD with
batch 32 at one learning rate for both runtimes (0.2 unless told: the rate at which the federated
CNN gets there in the fewest updates, docs/torch.md), devices 1x, 1x, 2x
and 4x slow (cycled over the clients), and the server's evaluation on the same 4,000 test
sequences. Flower's ClientApp and ServerApp call the same ``TorchTrainer`` as fedmq's workers and
aggregator, so local training and evaluation are the same code.
"""

from __future__ import annotations

import time

import numpy as np

from schemas.messages import TrainConfig
from torchtrain.mnist1d import BATCH_SIZE, build_trainer
from torchtrain.trainer import TorchTrainer
from training.trainer import Role, TrainerContext

CLIENTS = 8
SLOWDOWNS = [1.0, 1.0, 2.0, 4.0] * 2
LEARNING_RATE = 0.2
LOCAL_EPOCHS = 1
DATA_SEED = 0
MODEL_SEED = 0
#: The measured centralised CNN ceiling (docs/torch.md, 3 seeds) and the share of it to reach.
CEILING = 0.9755
TARGET = 0.9 * CEILING
#: The server evaluates once per this many client updates, whatever the strategy (a Flower round).
EVAL_UPDATES = CLIENTS
OPTIONS: dict[str, str | int | float | bool] = {"partition": "dirichlet", "dirichlet_alpha": 0.5}


def config(learning_rate: float = LEARNING_RATE) -> TrainConfig:
    return TrainConfig(
        local_epochs=LOCAL_EPOCHS, batch_size=BATCH_SIZE, learning_rate=learning_rate
    )


def trainer(role: Role, partition: int = 0) -> TorchTrainer:
    """What a fedmq worker (or the aggregator) builds with ``torchtrain.mnist1d:make_trainer``."""
    ctx = TrainerContext(role, partition, CLIENTS, DATA_SEED, OPTIONS, model_seed=MODEL_SEED)
    return build_trainer(ctx)


def slow_fit(
    trainer: TorchTrainer, weights: dict[str, np.ndarray], slowdown: float, learning_rate: float
) -> tuple[dict[str, np.ndarray], int]:
    """One fit on an emulated slow device: the worker's ``--slowdown`` rule (sleep
    ``slowdown - 1`` times the real fit time), as ``worker.fitting`` applies it.
    """
    started = time.monotonic()
    fit = trainer.fit(weights, config(learning_rate))
    extra = (slowdown - 1.0) * (time.monotonic() - started)
    if extra > 0:
        time.sleep(extra)
    return dict(fit.weights), fit.num_examples
