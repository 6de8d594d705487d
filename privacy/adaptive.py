"""Adaptive clipping toward a target quantile of update norms (Andrew et al., NeurIPS 2021).

After each release, C <- C * exp(-eta * (b - gamma)), where b is a noisy
estimate of the fraction of that release's updates whose norm was at most C.
The count is released with Gaussian noise too, so it costs privacy: the
update noise is raised just enough that the two together are worth exactly
one Gaussian with the configured noise multiplier (``update_noise_multiplier``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def update_noise_multiplier(noise_multiplier: float, count_stddev: float) -> float:
    """z_update = (z^-2 - sigma_b^-2)^-1/2 (the paper's Theorem 1 rearranged).

    Under zero-out neighbouring one user's contribution is replaced by a zero
    update, whose norm (0) is always within C: its bit b_i can go from 0 to 1, so
    the count sum(b_i) has sensitivity 1 (the 1/2 of a centred count holds only
    for add/remove neighbours) and its noise multiplier is sigma_b. Needs
    sigma_b > z.
    """
    if noise_multiplier <= 0:
        return 0.0
    if count_stddev <= noise_multiplier:
        raise ValueError(
            f"adaptive clipping needs a count noise stddev above z = {noise_multiplier:g} "
            f"(got {count_stddev:g}); raise --dp-count-stddev or the buffer size"
        )
    return float((noise_multiplier**-2 - count_stddev**-2) ** -0.5)


def default_count_stddev(contributions_per_release: int) -> float:
    """sigma_b = m / 20, the paper's default for m clients per round."""
    return contributions_per_release / 20.0


@dataclass
class AdaptiveClip:
    """The clip norm C and how it moves: toward the ``target_quantile`` of update norms."""

    clip: float
    target_quantile: float = 0.5
    learning_rate: float = 0.2
    count_stddev: float = 0.5

    def __post_init__(self) -> None:
        if self.clip <= 0:
            raise ValueError("clip must be positive")
        if not 0.0 <= self.target_quantile <= 1.0:
            raise ValueError("target_quantile must be in [0, 1]")

    def step(self, unclipped: int, contributions: int, rng: np.random.Generator) -> float:
        """Move C after a release of ``contributions`` updates, ``unclipped`` of them within C;
        returns the new C.
        """
        if contributions <= 0:
            return self.clip
        noisy_fraction = (unclipped + rng.normal(0.0, self.count_stddev)) / contributions
        self.clip *= math.exp(-self.learning_rate * (noisy_fraction - self.target_quantile))
        return self.clip
