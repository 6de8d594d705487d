"""The built-in task's model: a 1-D CNN for MNIST-1D's sequences (torch only, nothing of fedmq)."""

from __future__ import annotations

import torch

SEQUENCE_LENGTH = 40
N_CLASSES = 10


def read_out(features: int, hidden: int) -> list[torch.nn.Module]:
    """A linear read-out, or with ``hidden`` > 0 a hidden layer of that width before it."""
    if hidden <= 0:
        return [torch.nn.Linear(features, N_CLASSES)]
    return [torch.nn.Linear(features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, N_CLASSES)]


class Cnn1d(torch.nn.Sequential):
    """Three 1-D convolutions and a linear read-out (about 25 k parameters at 32 channels).
    ``hidden`` > 0 puts a hidden layer of that width before the read-out: models of tens of MB
    with the same convolutions (the memory bench's realistic sizes).
    """

    def __init__(self, channels: int = 32, hidden: int = 0) -> None:
        c = channels
        super().__init__(
            torch.nn.Unflatten(1, (1, SEQUENCE_LENGTH)),
            torch.nn.Conv1d(1, c, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
            torch.nn.Conv1d(c, 2 * c, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool1d(2),
            torch.nn.Conv1d(2 * c, 2 * c, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Flatten(), *read_out(2 * c * SEQUENCE_LENGTH // 4, hidden),
        )  # fmt: skip
