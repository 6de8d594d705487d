"""What a TorchTrainer keeps between fits: the module and nothing of the last step's gradients."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from schemas.messages import TrainConfig
from torchtrain.dpsgd import DpSgdConfig
from torchtrain.trainer import Batches, TorchTrainer

CONFIG = TrainConfig(local_epochs=1, learning_rate=0.1)
#: 16 M float32 weights, 64 MB: above glibc's largest mmap threshold (32 MB), so each such array
#: is its own mapping and its RSS goes back to the system as soon as it is freed.
WIDE_IN, WIDE_OUT = 1_000, 16_000


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def batches(n: int, features: int, classes: int) -> Batches:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)
    return cast(Batches, DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True))


def small_trainer(dpsgd: DpSgdConfig | None = None) -> TorchTrainer:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    return TorchTrainer(module, batches(64, 6, 2), None, dpsgd=dpsgd)


def test_a_fit_keeps_no_gradients() -> None:
    built = small_trainer()

    built.fit(built.initial_weights(), CONFIG)

    assert all(p.grad is None for p in built.module.parameters())


def test_a_dp_sgd_fit_keeps_no_per_example_gradients() -> None:
    built = small_trainer(DpSgdConfig(noise_multiplier=1.0, clip=1.0, seed=0))

    built.fit(built.initial_weights(), CONFIG)

    params = list(built.module.parameters())
    assert all(p.grad is None for p in params)
    assert all(getattr(p, "grad_sample", None) is None for p in params)


def test_a_fit_of_a_64_mb_model_grows_rss_by_its_one_copy_out() -> None:
    torch.manual_seed(0)
    module = torch.nn.Linear(WIDE_IN, WIDE_OUT)
    built = TorchTrainer(module, batches(8, WIDE_IN, WIDE_OUT), None)
    weights = built.initial_weights()
    model_bytes = sum(a.nbytes for a in weights.values())
    before = rss_bytes()

    trained = built.fit(weights, CONFIG).weights

    grown = rss_bytes() - before
    assert not np.array_equal(trained["weight"], weights["weight"])
    # The weights handed back are one model; the last step's gradients would be a second.
    assert grown < 1.5 * model_bytes
