"""Split a dataset's indices across workers: IID, or label-skewed by a Dirichlet(alpha)."""

from __future__ import annotations

import numpy as np

MAX_DIRICHLET_ATTEMPTS = 1000


def iid_partition(n: int, num_partitions: int, seed: int) -> list[np.ndarray]:
    """Shuffle and cut into near-equal parts."""
    idx = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(idx, num_partitions)]


def dirichlet_partition(
    labels: np.ndarray, num_partitions: int, alpha: float, seed: int, *, min_size: int = 10
) -> list[np.ndarray]:
    """Per class, share its examples among partitions by proportions ~ Dir(alpha).

    Resamples until every partition has at least ``min_size`` examples; a
    partition that already holds more than an equal share gets no more of a
    class (the usual balancing step), so small alphas still give usable parts.
    """
    if num_partitions * min_size > len(labels):
        raise ValueError(
            f"{len(labels)} examples cannot give {num_partitions} partitions of at least {min_size}"
        )
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(MAX_DIRICHLET_ATTEMPTS):
        parts: list[list[int]] = [[] for _ in range(num_partitions)]
        for label in classes:
            idx = np.flatnonzero(labels == label)
            rng.shuffle(idx)
            props = rng.dirichlet(np.full(num_partitions, alpha))
            full = np.array([len(p) >= len(labels) / num_partitions for p in parts])
            props = np.where(full, 0.0, props)
            props = (
                props / props.sum()
                if props.sum() > 0
                else np.full(num_partitions, 1 / num_partitions)
            )
            cuts = (np.cumsum(props) * len(idx)).astype(int)[:-1]
            for part, chunk in zip(parts, np.split(idx, cuts), strict=False):
                part.extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    raise ValueError(
        f"no Dirichlet({alpha}) split with every partition >= {min_size} in "
        f"{MAX_DIRICHLET_ATTEMPTS} tries"
    )
