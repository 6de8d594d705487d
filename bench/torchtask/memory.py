"""A torch worker's memory beyond torch's own, each model size in a fresh process.

The baseline is a process that has loaded torch and trained a throwaway CNN of
the same width for one step: torch's own lazy loading (its first optimizer
imports ``torch._dynamo`` and sympy, about 70 MB) and its kernels' state for
those layer shapes (about 7 MB) are torch's, not the worker's. Then
the process imports what a worker runs (``worker.service``, ``worker.main``, the
task) and builds and fits one worker's trainer; what its RSS gained over the
baseline is the worker's cost. Several widths of the CNN give the cost per
byte of model (the slope), apart from the fixed cost of the modules.

Realistic sizes (``--hidden 0,4000,12000,40000``): the MNIST-1D CNN with a hidden layer of
each width before its read-out, 0.1 to 104 MB of model with the same convolutions; a least-squares
line through those runs gives the fixed part and the slope in one run, and the model size from
which the worker's cost is at most 4x the model.

``python -m bench.torchtask memory [--task mnist] [--hidden W,...]`` (or ``python -m
bench.torchtask.memory CHANNELS SAMPLES TASK [HIDDEN]`` for one process); the MNIST task's 2-D CNN
is measured the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

#: Widths of each task's CNN measured: the task's own (MNIST-1D 32 channels, 98 KiB; MNIST 16,
#: 113 KiB) and wider ones (MNIST 128: 3.6 MiB).
CHANNELS = {"mnist1d": (32, 64, 128), "mnist": (16, 32, 64, 128)}
FITS = 3
PARTITIONS = 8
#: The task's batch size: the warm-up's activations are the size of a worker's.
WARM_BATCH = 32
#: The warm-up's hidden layer (if the worker's has one): the same kernels without the baseline
#: keeping a second model of the worker's size in the allocator.
WARM_HIDDEN = 16
#: The RSS floor: a worker's cost beyond torch's baseline at most this many times the model.
FLOOR_RATIO = 4.0


@dataclass(frozen=True)
class MemoryRun:
    """One worker process: RSS gained over the torch baseline after each stage, in bytes."""

    channels: int
    task: str
    model_bytes: int
    baseline_rss: int
    imports: int
    trainer: int
    first_fit: int
    fits: int
    hidden: int = 0


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def task_module(
    task: str, channels: int, hidden: int = 0
) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """A CNN of the task at this width and the shape of one batch of its inputs."""
    if task == "mnist":
        from torchtrain.cnn2d import IMAGE_SIDE, Cnn2d

        return Cnn2d(channels), (WARM_BATCH, IMAGE_SIDE * IMAGE_SIDE)
    from torchtrain.cnn1d import SEQUENCE_LENGTH, Cnn1d

    return Cnn1d(channels, hidden), (WARM_BATCH, SEQUENCE_LENGTH)


def warm_torch(task: str, channels: int, hidden: int = 0) -> None:
    """One SGD step of a throwaway CNN of the worker's width, on one thread, at batch 32."""
    import torch

    torch.set_num_threads(1)
    module, shape = task_module(task, channels, min(hidden, WARM_HIDDEN))
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    labels = torch.zeros(WARM_BATCH, dtype=torch.long)
    out = module(torch.zeros(shape))
    torch.nn.functional.cross_entropy(out, labels).backward()  # type: ignore[no-untyped-call]
    optimizer.step()


def measure(
    channels: int,
    fits: int = FITS,
    samples: int | None = None,
    task: str = "mnist1d",
    hidden: int = 0,
) -> MemoryRun:
    """In this process (a fresh one: nothing of fedmq loaded yet): baseline, then one worker."""
    warm_torch(task, channels, hidden)
    baseline = rss_bytes()
    import worker.main
    import worker.service  # noqa: F401  # what a worker process loads
    from bench.torchtask.ceiling import BUILDERS, task_context
    from schemas.messages import TrainConfig
    from torchtrain.mnist1d import DEFAULT_SAMPLES

    imported = rss_bytes() - baseline
    task_ctx = task_context(samples or DEFAULT_SAMPLES, num_partitions=PARTITIONS)
    ctx = replace(task_ctx, role="worker")
    width = {"channels": channels, **({"hidden": hidden} if hidden else {})}
    trainer = BUILDERS[task](ctx, **width)
    weights = trainer.initial_weights()
    built = rss_bytes() - baseline
    config = TrainConfig(learning_rate=0.05)
    weights = trainer.fit(weights, config).weights
    first = rss_bytes() - baseline
    for _ in range(fits - 1):
        weights = trainer.fit(weights, config).weights
    model_bytes = sum(a.nbytes for a in weights.values())
    after = rss_bytes() - baseline
    return MemoryRun(channels, task, model_bytes, baseline, imported, built, first, after, hidden)


def in_fresh_process(
    channels: int, samples: int | None = None, task: str = "mnist1d", hidden: int = 0
) -> MemoryRun:
    module = "bench.torchtask.memory"
    cmd = [sys.executable, "-m", module, str(channels), str(samples or 0), task, str(hidden)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return MemoryRun(**json.loads(out.splitlines()[-1]))


def slope(small: MemoryRun, large: MemoryRun) -> float:
    """Bytes of RSS per byte of model between two widths (the fixed cost cancels)."""
    return (large.fits - small.fits) / (large.model_bytes - small.model_bytes)


def line_fit(runs: list[MemoryRun]) -> tuple[float, float]:
    """Least-squares (fixed bytes, bytes per model byte) of the cost after the fits."""
    xs, ys = [float(r.model_bytes) for r in runs], [float(r.fits) for r in runs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    per_byte = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return my - per_byte * mx, per_byte


def floor_model_bytes(fixed: float, per_byte: float) -> float | None:
    """The smallest model whose cost (``fixed + per_byte * size``) is at most 4x its size."""
    if per_byte >= FLOOR_RATIO:
        return None
    return max(fixed, 0.0) / (FLOOR_RATIO - per_byte)


def worker_memory(task: str = "mnist1d", hidden: tuple[int, ...] = ()) -> dict[str, object]:
    """Every width of the task's CNN (or, with ``hidden``, every hidden layer's width at the task's
    own channels), each in a fresh process.
    """
    from torchtrain.mnist1d import DEFAULT_SAMPLES, load

    if task == "mnist1d":  # generated and cached before the workers start, as a deployment's
        load(DEFAULT_SAMPLES, 0)
    if hidden:
        runs = [in_fresh_process(CHANNELS[task][0], task=task, hidden=h) for h in hidden]
    else:
        runs = [in_fresh_process(c, task=task) for c in CHANNELS[task]]
    fixed, per_byte = line_fit(runs)
    return {
        "runs": [asdict(r) for r in runs],
        "ratios": [r.fits / r.model_bytes for r in runs],
        "slopes": [slope(runs[0], r) for r in runs[1:]],
        "fixed_bytes": fixed,
        "bytes_per_model_byte": per_byte,
        "floor_from_model_bytes": floor_model_bytes(fixed, per_byte),
    }


if __name__ == "__main__":
    width, size = (int(a) for a in sys.argv[1:3])
    extra = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    run = measure(width, samples=size or None, task=sys.argv[3], hidden=extra)
    print(json.dumps(asdict(run)))
