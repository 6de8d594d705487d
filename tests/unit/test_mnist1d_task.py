"""The MNIST-1D task: generated here without the network, cached, split the same everywhere."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from torchtrain import mnist1d
from training.trainer import TrainerContext


def no_network(*args: object, **kwargs: object) -> socket.socket:
    raise AssertionError("MNIST-1D generation tried to open a socket")


def test_generation_opens_no_socket_and_the_cache_returns_the_same_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setenv("FEDMQ_CACHE_DIR", str(tmp_path))
    global_state = np.random.get_state()[1].copy()  # type: ignore[index]

    made = mnist1d.load(300, 7)
    cached = mnist1d.load(300, 7)

    assert made.x_train.shape == (240, 40) and made.x_test.shape == (60, 40)
    assert made.x_train.dtype == np.float32 and made.y_train.dtype == np.int64
    assert np.array_equal(made.x_train, cached.x_train)
    assert list(tmp_path.glob("*.npz")) == [tmp_path / "mnist1d-300-7.npz"]
    assert np.array_equal(np.random.get_state()[1], global_state)  # type: ignore[index]


def test_the_dirichlet_split_is_a_partition_of_the_training_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDMQ_CACHE_DIR", str(tmp_path))
    data = mnist1d.load(1000, 0)
    ctx = TrainerContext("worker", 0, 8, 0, {"dirichlet_alpha": 0.5})

    parts = [mnist1d.partition_indices(data.y_train, replace(ctx, partition=i)) for i in range(8)]

    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(data.y_train)))
    assert min(len(p) for p in parts) >= 10


def test_the_cnn_maps_a_batch_of_sequences_to_ten_logits() -> None:
    import torch

    out = mnist1d.Cnn1d()(torch.zeros(4, mnist1d.SEQUENCE_LENGTH))

    assert out.shape == (4, mnist1d.N_CLASSES)


def test_a_worker_holds_its_partition_and_no_test_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDMQ_CACHE_DIR", str(tmp_path))
    ctx = TrainerContext("worker", 0, 4, 0, {"samples": 500})

    worker = mnist1d.build_trainer(ctx)
    aggregator = mnist1d.build_trainer(replace(ctx, role="aggregator"))

    assert worker.test_data is None and worker.train_data is not None
    assert aggregator.test_data is not None and aggregator.train_data is None
