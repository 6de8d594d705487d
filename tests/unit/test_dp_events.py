"""The DP events charged match the mechanism that actually ran.

The epsilon tests elsewhere give the accountant the events the strategy
records; here a recording generator captures every noise draw the mechanism
makes, and each release's executed noise multiplier, count noise and
participants are compared with what the ledgers were charged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aggregator.core.fedbuff import FedBuff
from aggregator.core.private import PrivacyConfig, PrivateStrategy
from aggregator.core.strategy import Contribution
from privacy.accountant import GaussianEvent, combined_noise_multiplier
from privacy.participation import Budget

DIM, K, WORKERS, CLIP, Z = 2_000, 3, ("a", "b", "c", "d"), 0.5, 1.5


class RecordingGenerator(np.random.Generator):
    """A generator that keeps every standard-normal array and every normal() scale it draws."""

    def __init__(self, seed: int) -> None:
        super().__init__(np.random.PCG64(seed))
        self.standard: list[np.ndarray] = []
        self.scales: list[float] = []

    def standard_normal(self, *args: Any, **kwargs: Any) -> Any:
        drawn = super().standard_normal(*args, **kwargs)
        self.standard.append(np.array(drawn))
        return drawn

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None) -> Any:
        self.scales.append(float(scale))
        return super().normal(loc, scale, size)


def run(
    adaptive: bool, count_stddev: float = 0.5
) -> tuple[PrivateStrategy, RecordingGenerator, list[dict[str, float]]]:
    rng = RecordingGenerator(3)
    config = PrivacyConfig(
        mode="central",
        clip=CLIP,
        noise_multiplier=Z,
        budget=Budget(None, 1e-5),
        adaptive=adaptive,
        count_stddev=count_stddev,
    )
    strategy = PrivateStrategy(
        FedBuff(buffer_size=K, sample_weighting=False), config, rng, per_release=K
    )
    model = {"w": np.zeros(DIM, np.float64)}
    executed: list[dict[str, float]] = []
    for i in range(12):  # round robin over four workers: releases {a,b,c} {d,a,b} {c,d,a} {b,c,d}
        worker = WORKERS[i % len(WORKERS)]
        before, clip, draws = model["w"].copy(), strategy.clip, len(rng.standard)
        zero = Contribution(f"u{i}", worker, 0, 1, {"w": np.zeros(DIM)})
        if strategy.add(model, zero).stepped:
            noise = np.concatenate(rng.standard[draws:])
            std = float(np.median((model["w"] - before) / noise))
            executed.append({"multiplier": std / (strategy.scale * clip)})  # type: ignore[operator]
    return strategy, rng, executed


def test_each_release_draws_the_charged_noise_and_charges_its_members_once() -> None:
    strategy, rng, executed = run(adaptive=False)

    spent = strategy.spent()
    assert len(executed) == spent.releases == 4
    assert [e["multiplier"] for e in executed] == pytest.approx([Z] * 4)
    for worker in WORKERS:  # each was in three of the four releases
        assert strategy.accountant.ledger(worker).counts == {GaussianEvent(Z): 3}
    assert rng.scales == []  # no other noise was drawn


def test_adaptive_clipping_charges_the_sum_and_the_count_as_one_gaussian() -> None:
    strategy, rng, executed = run(adaptive=True, count_stddev=2.0)

    assert len(executed) == strategy.spent().releases == 4
    assert rng.scales == [2.0] * 4  # one noisy count per release, sigma_b = 2 ...
    for e in executed:  # ... whose sensitivity is 1 (zero-out): worth a Gaussian of z = sigma_b
        assert combined_noise_multiplier(e["multiplier"], 2.0) == pytest.approx(Z, rel=1e-6)
    for worker in WORKERS:
        assert strategy.accountant.ledger(worker).counts == {GaussianEvent(Z): 3}
