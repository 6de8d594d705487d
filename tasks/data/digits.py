"""scikit-learn's handwritten digits (8x8 images, 10 classes); it ships inside scikit-learn."""

from __future__ import annotations

import numpy as np

from tasks.data import Dataset


def load_digits_dataset() -> Dataset:
    """All 1,797 digits, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return Dataset(x=(bunch.data / 16.0).astype(np.float32), y=bunch.target.astype(np.int64))


def stratified_split(data: Dataset, test_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Split into (train, test), keeping each class's share, deterministic under ``seed``."""
    rng = np.random.default_rng(seed)
    test_idx = []
    for label in np.unique(data.y):
        idx = np.flatnonzero(data.y == label)
        rng.shuffle(idx)
        test_idx.append(idx[: int(round(len(idx) * test_fraction))])
    test = np.sort(np.concatenate(test_idx))
    mask = np.ones(len(data), bool)
    mask[test] = False
    return data.subset(np.flatnonzero(mask)), data.subset(test)
