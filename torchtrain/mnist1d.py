"""The built-in PyTorch task: a 1-D CNN on MNIST-1D, generated on this machine.

MNIST-1D (Greydanus and Kobak, 2020) is made by ``mnist1d``'s ``make_dataset``
from ten hand-written templates with random padding, shear, translation and
noise; nothing is downloaded (its ``get_dataset`` download path is never
called). Sequences are generated once per (size, seed) and cached as ``.npz``
under ``FEDMQ_CACHE_DIR`` (default ``~/.cache/fedmq``), so a federation's
processes do not each spend seconds generating them.

``--trainer torchtrain.mnist1d:make_trainer`` with options ``samples``
(train + test sequences; 80 % train), ``partition``/``dirichlet_alpha`` and the
worker's ``dpsgd_*`` options.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from tasks.data.partition import dirichlet_partition, iid_partition
from torchtrain.cnn1d import N_CLASSES as N_CLASSES
from torchtrain.cnn1d import SEQUENCE_LENGTH as SEQUENCE_LENGTH
from torchtrain.cnn1d import Cnn1d as Cnn1d
from torchtrain.dpsgd import DpSgdConfig
from torchtrain.trainer import Batches, TorchTrainer
from training.trainer import Options, TrainerContext

#: Default train + test sequences. The package's own default (5,000) gives a 4,000-sequence training
#: set: too little for 8 label-skewed workers to match the centralised CNN.
DEFAULT_SAMPLES = 20_000
BATCH_SIZE = 32
EVAL_BATCH_SIZE = 1024


@dataclass(frozen=True)
class Mnist1d:
    """Generated MNIST-1D: float32 sequences (n, 40) and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def generate(samples: int, seed: int) -> Mnist1d:
    """``samples`` sequences from ``make_dataset`` (80 % train), without touching the network."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = samples, seed
    state = np.random.get_state()  # make_dataset reseeds numpy's global generator: put it back
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    return Mnist1d(
        np.asarray(data["x"], np.float32),
        np.asarray(data["y"], np.int64),
        np.asarray(data["x_test"], np.float32),
        np.asarray(data["y_test"], np.int64),
    )


def cache_dir() -> Path:
    return Path(os.environ.get("FEDMQ_CACHE_DIR") or Path.home() / ".cache" / "fedmq")


def load(samples: int = DEFAULT_SAMPLES, seed: int = 0) -> Mnist1d:
    """The cached dataset for (samples, seed), generated (and cached atomically) if missing."""
    path = cache_dir() / f"mnist1d-{samples}-{seed}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as saved:  # no pickles: a cache file is data
            return Mnist1d(*(saved[k] for k in ("x_train", "y_train", "x_test", "y_test")))
    data = generate(samples, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{uuid.uuid4().hex}.tmp.npz")
    np.savez(tmp, **data.__dict__)
    os.replace(tmp, path)
    return data


def loader(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool) -> Batches:
    dataset: Dataset[tuple[torch.Tensor, torch.Tensor]] = TensorDataset(  # type: ignore[assignment]
        torch.from_numpy(x), torch.from_numpy(y)
    )  # TensorDataset is typed as a dataset of tuples of any length
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def partition_indices(labels: np.ndarray, ctx: TrainerContext) -> np.ndarray:
    """This context's share of the training set (the split is the same on every process)."""
    if ctx.options.get("partition", "dirichlet") == "iid":
        parts = iid_partition(len(labels), ctx.num_partitions, ctx.seed)
    else:
        alpha = float(ctx.options.get("dirichlet_alpha", 0.5))
        parts = dirichlet_partition(labels, ctx.num_partitions, alpha, ctx.seed)
    return parts[ctx.partition]


def dpsgd_config(opts: Options) -> DpSgdConfig | None:
    """The worker's ``dpsgd_*`` options (``None`` when DP-SGD is off)."""
    if not opts.get("dpsgd"):
        return None
    target, ledger, seed = (
        opts.get(k) for k in ("dpsgd_target_epsilon", "dpsgd_ledger", "dpsgd_seed")
    )
    return DpSgdConfig(
        noise_multiplier=float(opts.get("dpsgd_noise_multiplier", 1.0)),
        clip=float(opts.get("dpsgd_clip", 1.0)),
        delta=float(opts.get("dpsgd_delta", 1e-5)),
        target_epsilon=float(target) if target is not None else None,
        accountant="pld" if opts.get("dpsgd_accountant") == "pld" else "rdp",
        ledger=str(ledger) if ledger else None,
        seed=int(seed) if seed is not None else None,
    )


def make_trainer(ctx: TrainerContext) -> TorchTrainer:
    """Factory for ``--trainer torchtrain.mnist1d:make_trainer``: a worker trains on its
    partition, the aggregator evaluates on the test set.
    """
    return build_trainer(ctx, dpsgd=dpsgd_config(ctx.options))


def build_trainer(
    ctx: TrainerContext,
    *,
    batch_size: int = BATCH_SIZE,
    dpsgd: DpSgdConfig | None = None,
    channels: int = 32,
    hidden: int = 0,
) -> TorchTrainer:
    """The task's trainer with a chosen batch size (the expected one under DP-SGD). A worker
    keeps only its partition (it never evaluates); the aggregator only the test set.
    """
    data = load(int(ctx.options.get("samples") or DEFAULT_SAMPLES), ctx.seed)
    torch.manual_seed(ctx.model_seed)
    module = Cnn1d(channels, hidden)
    train, test = (data.x_train, data.y_train), (data.x_test, data.y_test)
    return split_trainer(ctx, module, train, test, batch_size=batch_size, dpsgd=dpsgd)


def split_trainer(
    ctx: TrainerContext,
    module: torch.nn.Module,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    batch_size: int,
    dpsgd: DpSgdConfig | None,
    features: Callable[[np.ndarray], np.ndarray] = np.asarray,
) -> TorchTrainer:
    """A trainer of ``module`` on this context's share of ``train`` (features, labels) for a
    worker, on ``test`` for the aggregator (the simulator's gets both). ``features`` makes the
    model's input of the rows kept, and only of those.
    """
    train_batches, test_batches = None, None
    if ctx.role != "aggregator":
        idx = partition_indices(train[1], ctx)
        train_batches = loader(features(train[0][idx]), train[1][idx], batch_size, shuffle=True)
    if ctx.role != "worker":
        test_batches = loader(features(test[0]), test[1], EVAL_BATCH_SIZE, shuffle=False)
    seed = ctx.seed * 100_003 + ctx.partition
    return TorchTrainer(module, train_batches, test_batches, seed=seed, dpsgd=dpsgd)


if __name__ == "__main__":  # `python -m torchtrain.mnist1d [SAMPLES [SEED]]` (0: default size)
    import sys

    size, seed = ([int(a) for a in sys.argv[1:3]] + [0, 0])[:2]
    made = load(size or DEFAULT_SAMPLES, seed)
    print(f"MNIST-1D: {len(made.y_train)} train, {len(made.y_test)} test sequences cached")
