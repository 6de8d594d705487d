"""End to end with real processes: the PyTorch task (1-D CNN on MNIST-1D) learns over the broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.procs import Federation
from torchtrain import mnist1d

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

TASK = [
    "--trainer", "torchtrain.mnist1d:make_trainer", "--samples", "2000", "--partition", "dirichlet",
]  # fmt: skip


def test_two_torch_workers_train_the_cnn_past_60_percent_with_fedbuff(
    federation: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = federation
    monkeypatch.setenv("FEDMQ_CACHE_DIR", str(tmp_path / "cache"))  # inherited by the processes
    mnist1d.load(2000, 0)  # generated once here rather than in every process
    agg = fed.aggregator(
        *TASK, "--strategy", "fedbuff", "--buffer-size", "2", "--learning-rate", "0.2",
        "--local-epochs", "2", "--eval-every", "1", "--target-accuracy", "0.6",
        "--max-seconds", "240", num_partitions=2,
    )  # fmt: skip
    workers = [fed.worker(i, *TASK, num_partitions=2) for i in range(2)]

    assert agg.wait(timeout=400) == 0, fed.log("aggregator.log")[-3000:]
    for w in workers:
        w.wait(timeout=60)

    summary = fed.summary()
    assert summary is not None and summary["accuracy"] >= 0.6, summary
    assert "accuracy" in str(summary["stopped_because"]), summary
    applied = [e for e in fed.audit() if e["event"] == "applied"]
    assert {e["worker_id"] for e in applied} == {"w0", "w1"}
    ids = [e["update_id"] for e in applied]
    assert len(ids) == len(set(ids))
