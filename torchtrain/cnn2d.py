"""The MNIST task's model: a 2-D CNN for 28x28 images (torch only, nothing of fedmq)."""

from __future__ import annotations

import torch

IMAGE_SIDE = 28
N_CLASSES = 10


class Cnn2d(torch.nn.Sequential):
    """Two 5x5 convolutions with max-pooling and a linear read-out (about 29 k parameters at
    the default 16 channels). Takes flat images (n, 784), as the dataset holds them.
    """

    def __init__(self, channels: int = 16) -> None:
        c = channels
        super().__init__(
            torch.nn.Unflatten(1, (1, IMAGE_SIDE, IMAGE_SIDE)),
            torch.nn.Conv2d(1, c, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(c, 2 * c, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(2 * c * (IMAGE_SIDE // 4) ** 2, N_CLASSES),
        )  # fmt: skip
