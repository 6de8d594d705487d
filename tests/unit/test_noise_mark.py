"""Each DP release's noise draw is fingerprinted, and a restored strategy never repeats a draw."""

from __future__ import annotations

import numpy as np

from aggregator.core.fedbuff import FedBuff
from aggregator.core.private import PrivacyConfig, PrivateStrategy
from aggregator.core.strategy import Contribution
from privacy.participation import Budget


def private_fedbuff(seed: int) -> PrivateStrategy:
    config = PrivacyConfig(
        mode="central", clip=1.0, noise_multiplier=1.0, budget=Budget(None, 1e-5)
    )
    inner = FedBuff(buffer_size=1, server_lr=1.0, sample_weighting=False)
    return PrivateStrategy(inner, config, np.random.default_rng(seed), per_release=1)


def release(strategy: PrivateStrategy, model: dict[str, np.ndarray], uid: str) -> str | None:
    delta = {"w": np.full(3, 0.1, np.float32)}
    strategy.add(model, Contribution(uid, "w0", staleness=0, num_examples=1, arrays=delta))
    return strategy.noise_mark()


def test_every_release_has_a_noise_mark_of_its_own_across_a_restore() -> None:
    model = {"w": np.zeros(3, np.float32)}
    first = private_fedbuff(seed=1)
    assert first.noise_mark() is None
    marks = [release(first, model, "u1"), release(first, model, "u2")]
    scalars, arrays = first.state()

    restored = private_fedbuff(seed=1)  # the same seed: only the restored state tells it apart
    restored.restore(scalars, arrays)
    marks.append(release(restored, model, "u3"))

    assert None not in marks and len(set(marks)) == 3
