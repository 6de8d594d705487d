"""The bring-your-own example in docs/torch.md is complete, under 60 lines, and trains."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from schemas.messages import TrainConfig
from training.loading import load_factory
from training.trainer import TrainerContext

DOC = Path(__file__).resolve().parents[2] / "docs" / "torch.md"


def example_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    return next(str(b) for b in blocks if "def make_trainer" in b)


def test_the_example_is_under_60_lines() -> None:
    assert len(example_source().splitlines()) < 60


def test_the_example_loads_through_the_trainer_flag_and_learns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mytask.py").write_text(example_source())
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = load_factory("mytask:make_trainer")
    worker = factory(TrainerContext("worker", 0, 2, seed=0))
    aggregator = factory(TrainerContext("aggregator", 0, 2, seed=0))
    config = TrainConfig(local_epochs=3, learning_rate=0.05)

    weights = aggregator.initial_weights()
    before = aggregator.evaluate(weights, config)
    fit = worker.fit(weights, config)
    after = aggregator.evaluate(fit.weights, config)

    assert fit.weights["body.1.num_batches_tracked"].dtype == np.int64
    assert after.loss < before.loss and float(after.metrics["accuracy"]) > 0.8
    sys.modules.pop("mytask", None)
