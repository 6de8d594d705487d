"""Built-in datasets (no downloads) and the partitioning of them across workers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Features (float32, n x d) and integer labels (n)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray) -> Dataset:
        return Dataset(self.x[idx], self.y[idx])


@dataclass(frozen=True)
class FederatedData:
    """One worker's training partition and the shared held-out test set."""

    train: Dataset
    test: Dataset
    n_features: int
    n_classes: int
