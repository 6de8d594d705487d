"""Built-in data: partitions are disjoint, complete, seeded; generators match their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.builtin import federated_data
from tasks.data.digits import load_digits_dataset, stratified_split
from tasks.data.partition import dirichlet_partition, iid_partition
from tasks.data.synthetic import N_CLASSES, N_FEATURES, synthetic_users
from training.trainer import TrainerContext


def assert_is_partition(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n and len(np.unique(joined)) == n


@settings(max_examples=30, deadline=None)
@given(n=st.integers(10, 2000), k=st.integers(1, 10), seed=st.integers(0, 1000))
def test_iid_partition_is_a_partition_of_near_equal_parts(n: int, k: int, seed: int) -> None:
    parts = iid_partition(n, k, seed)
    assert_is_partition(parts, n)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


@settings(max_examples=20, deadline=None)
@given(
    k=st.integers(2, 8), alpha=st.sampled_from([0.1, 0.5, 1.0, 100.0]), seed=st.integers(0, 1000)
)
def test_dirichlet_partition_is_a_partition_with_a_minimum_size(
    k: int, alpha: float, seed: int
) -> None:
    labels = np.random.default_rng(seed).integers(0, 10, 1500)
    parts = dirichlet_partition(labels, k, alpha, seed, min_size=20)
    assert_is_partition(parts, len(labels))
    assert min(len(p) for p in parts) >= 20


def test_small_alpha_skews_labels_more_than_large_alpha() -> None:
    labels = np.repeat(np.arange(10), 150)

    def skew(alpha: float) -> float:
        parts = dirichlet_partition(labels, 5, alpha, seed=3)
        shares = [np.bincount(labels[p], minlength=10) / len(p) for p in parts]
        return float(np.mean([np.abs(s - 0.1).sum() for s in shares]))

    assert skew(0.1) > skew(100.0) + 0.5


def test_dirichlet_partition_is_deterministic_under_a_seed() -> None:
    labels = np.random.default_rng(0).integers(0, 10, 500)
    a = dirichlet_partition(labels, 4, 0.5, seed=7)
    b = dirichlet_partition(labels, 4, 0.5, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=False))


def test_impossible_minimum_is_an_error() -> None:
    with pytest.raises(ValueError):
        dirichlet_partition(np.zeros(10, int), 4, 0.5, seed=0, min_size=10)


def test_digits_ship_with_scikit_learn_and_split_stratified() -> None:
    data = load_digits_dataset()
    train, test = stratified_split(data, 0.2, seed=0)
    assert len(data) == 1797 and data.x.shape[1] == 64 and 0 <= data.x.min() and data.x.max() <= 1
    assert len(train) + len(test) == 1797
    assert set(np.unique(test.y)) == set(range(10))


def test_synthetic_generator_follows_the_fedprox_recipe() -> None:
    users = synthetic_users(30, alpha=1.0, beta=1.0, seed=0)
    assert len(users) == 30
    assert all(u.x.shape[1] == N_FEATURES and len(u) >= 50 for u in users)
    assert all(0 <= u.y.min() and u.y.max() < N_CLASSES for u in users)
    again = synthetic_users(30, alpha=1.0, beta=1.0, seed=0)
    assert all(np.array_equal(a.x, b.x) for a, b in zip(users, again, strict=False))


def test_every_process_sees_the_same_test_set_and_disjoint_train_parts() -> None:
    contexts = [
        TrainerContext("worker", i, 4, seed=0, options={"dataset": "digits"}) for i in range(4)
    ]
    datas = [federated_data(c) for c in contexts]
    assert all(np.array_equal(d.test.x, datas[0].test.x) for d in datas)
    rows = {tuple(row) for d in datas for row in d.train.x}
    assert sum(len(d.train) for d in datas) + len(datas[0].test) == 1797
    assert len(rows) > 1000


def test_the_aggregator_evaluates_on_the_workers_held_out_set_whatever_its_model_seed() -> None:
    from aggregator.settings import AggregatorSettings
    from training.loading import load_trainer
    from worker.settings import WorkerSettings

    agg = load_trainer(
        AggregatorSettings(seed=5, data_seed=1), role="aggregator", partition=0, model_seed=5
    )
    worker = load_trainer(WorkerSettings(data_seed=1), role="worker", partition=0)

    np.testing.assert_array_equal(agg.data.test.x, worker.data.test.x)  # type: ignore[attr-defined]
    train_rows = {tuple(r) for r in worker.data.train.x}  # type: ignore[attr-defined]
    assert not any(tuple(r) in train_rows for r in agg.data.test.x)  # type: ignore[attr-defined]
