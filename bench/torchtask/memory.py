"""A torch worker's memory beyond torch's own: RSS after fits, minus RSS once torch is loaded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench.torchtask.ceiling import task_context
from schemas.messages import TrainConfig


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def worker_memory(fits: int = 3, samples: int = 20_000) -> dict[str, float]:
    """Baseline: torch and the task's modules loaded, the dataset file read, and torch's kernels
    warmed by one forward and backward pass of a throwaway CNN; then one worker's trainer fits.
    """
    import torch

    from torchtrain.mnist1d import BATCH_SIZE, SEQUENCE_LENGTH, Cnn1d, build_trainer, load

    load(samples, 0)
    torch.set_num_threads(1)
    Cnn1d()(torch.zeros(BATCH_SIZE, SEQUENCE_LENGTH)).sum().backward()
    baseline = rss_bytes()
    ctx = replace(task_context(samples, num_partitions=8), role="worker")
    trainer = build_trainer(ctx)
    weights = trainer.initial_weights()
    model_bytes = sum(a.nbytes for a in weights.values())
    config = TrainConfig(learning_rate=0.05)
    weights = trainer.fit(weights, config).weights
    after_one = rss_bytes()
    for _ in range(fits - 1):
        weights = trainer.fit(weights, config).weights
    beyond = rss_bytes() - baseline
    return {
        "model_bytes": model_bytes,
        "beyond_baseline_bytes": beyond,
        "ratio": beyond / model_bytes,
        "growth_after_first_fit": rss_bytes() - after_one,
    }
