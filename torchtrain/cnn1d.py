"""The built-in task's model: a 1-D CNN for MNIST-1D's sequences (torch only, nothing of fedmq)."""

from __future__ import annotations

import torch

SEQUENCE_LENGTH = 40
N_CLASSES = 10


class Cnn1d(torch.nn.Sequential):
    """Three 1-D convolutions and a linear read-out (about 25 k parameters)."""

    def __init__(self, channels: int = 32) -> None:
        c = channels
        super().__init__(
            torch.nn.Unflatten(1, (1, SEQUENCE_LENGTH)),
            torch.nn.Conv1d(1, c, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
            torch.nn.Conv1d(c, 2 * c, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
            torch.nn.Conv1d(2 * c, 2 * c, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Flatten(), torch.nn.Linear(2 * c * SEQUENCE_LENGTH // 4, N_CLASSES),
        )  # fmt: skip
