"""The centralised ceiling: the same built-in model trained on all the federation's data at once."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from schemas.messages import TrainConfig
from tasks.builtin import BuiltinTrainer, make_trainer
from tasks.data import Dataset
from training.trainer import TrainerContext

#: Enough epochs for the built-in models to converge on digits (100 gave 0.953, 300 0.961, 1000
#: 0.964).
CEILING_EPOCHS = 1000


def centralised_accuracy(
    context: TrainerContext, config: TrainConfig, *, epochs: int = CEILING_EPOCHS
) -> float:
    """Test accuracy after ``epochs`` epochs of SGD on all partitions' training data together."""
    parts = [make_trainer(replace(context, partition=i)) for i in range(context.num_partitions)]
    union = Dataset(
        np.concatenate([p.data.train.x for p in parts]),
        np.concatenate([p.data.train.y for p in parts]),
    )
    central = BuiltinTrainer(
        parts[0].model, replace(parts[0].data, train=union), context.seed, partition=0
    )
    weights = central.initial_weights()
    for _ in range(epochs):
        weights = central.fit(weights, config).weights
    return float(central.evaluate(weights, config).metrics["accuracy"])
