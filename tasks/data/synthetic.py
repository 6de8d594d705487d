"""The FedProx Synthetic(alpha, beta) generator (Li et al., 2020).

Each user k draws a model W_k, b_k around a mean u_k ~ N(0, alpha) and
features around v_k ~ N(B_k, 1) with B_k ~ N(0, beta); alpha controls how much
the local models differ, beta how much the local data differ. Labels are
argmax(softmax(x W_k + b_k)). In the IID variant all users share W, b ~ N(0, 1)
and v = 0.
"""

from __future__ import annotations

import numpy as np

from tasks.data import Dataset

N_FEATURES = 60
N_CLASSES = 10


def synthetic_users(
    num_users: int, alpha: float, beta: float, seed: int, *, iid: bool = False
) -> list[Dataset]:
    """One dataset per user, sizes lognormal(4, 2) + 50, deterministic under ``seed``."""
    rng = np.random.default_rng(seed)
    sizes = rng.lognormal(4, 2, num_users).astype(int) + 50
    cov = np.diag(np.arange(1, N_FEATURES + 1, dtype=np.float64) ** -1.2)
    shared_w = rng.normal(0, 1, (N_FEATURES, N_CLASSES))
    shared_b = rng.normal(0, 1, N_CLASSES)
    users = []
    for size in sizes:
        if iid:
            w, b, mean = shared_w, shared_b, np.zeros(N_FEATURES)
        else:
            u = rng.normal(0, alpha)
            w = rng.normal(u, 1, (N_FEATURES, N_CLASSES))
            b = rng.normal(u, 1, N_CLASSES)
            big_b = rng.normal(0, beta)
            mean = rng.normal(big_b, 1, N_FEATURES)
        x = rng.multivariate_normal(mean, cov, size)
        y = np.argmax(x @ w + b, axis=1)
        users.append(Dataset(x.astype(np.float32), y.astype(np.int64)))
    return users


def split_user(data: Dataset, test_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Per-user train/test split, as in FedProx's preprocessing."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(data))
    n_test = int(len(data) * test_fraction)
    return data.subset(np.sort(idx[n_test:])), data.subset(np.sort(idx[:n_test]))
