"""The public parameters of one secure-aggregation buffer, fixed when its dispatch round starts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from secagg.graph import NeighbourGraph, neighbour_graph
from secagg.params import check_parameters
from secagg.quantize import FixedPoint, fixed_point_for
from secagg.skellam import SkellamNoise, noisy_fixed_point

MAX_NAME = 256


@dataclass(frozen=True)
class BufferSetup:
    """Everything a mask depends on, known to every worker before it masks.

    ``cohort`` holds the broker-validated identities of the invited workers,
    sorted; a worker's index is its position. Up to all of them may
    contribute, so the fixed-point scale is chosen for ``len(cohort)``
    summands of magnitude at most ``clip * max_weight`` (an L2-clipped update
    times its staleness/sample weight). ``noise_multiplier`` z > 0 asks every
    worker for its share of Skellam noise (``secagg.skellam``): z on the clip for
    any sum of ``min_contributors`` or more; 0 means no noise.
    """

    buffer_id: str
    cohort: tuple[str, ...]
    dimension: int
    degree: int
    threshold: int
    clip: float
    max_weight: float
    min_contributors: int
    noise_multiplier: float = 0.0

    def __post_init__(self) -> None:
        _check_name("buffer id", self.buffer_id)
        for identity in self.cohort:
            _check_name("worker identity", identity)
        if list(self.cohort) != sorted(set(self.cohort)):
            raise ValueError("cohort must be sorted and without repeats")
        check_parameters(len(self.cohort), self.degree, self.threshold)
        if not 1 <= self.dimension < 1 << 31:
            raise ValueError(f"dimension {self.dimension} out of range")
        for name in ("clip", "max_weight"):
            value = getattr(self, name)
            if not (isinstance(value, float | int) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite")
        if not 2 <= self.min_contributors <= len(self.cohort):
            raise ValueError(
                f"min_contributors {self.min_contributors} outside [2, {len(self.cohort)}]"
            )
        z = self.noise_multiplier
        if not (isinstance(z, float | int) and math.isfinite(z) and z >= 0):
            raise ValueError(f"noise_multiplier must be finite and >= 0, got {z}")
        self.fixed_point  # noqa: B018 (refuse noise that cannot fit, here rather than at masking)

    @cached_property
    def fixed_point(self) -> FixedPoint:
        bound, summands = self.clip * self.max_weight, len(self.cohort)
        noise = self.noise
        if noise is None:
            return fixed_point_for(bound, summands)
        return noisy_fixed_point(bound, summands, self.dimension, noise)

    @property
    def noise(self) -> SkellamNoise | None:
        """The distributed DP noise every worker adds, if any."""
        if self.noise_multiplier == 0:
            return None
        return SkellamNoise(float(self.noise_multiplier), self.min_contributors)

    @cached_property
    def graph(self) -> NeighbourGraph:
        return neighbour_graph(self.buffer_id, self.cohort, self.degree)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {identity: i for i, identity in enumerate(self.cohort)}

    def index(self, identity: str) -> int:
        """The cohort index of ``identity``; KeyError if it is not invited."""
        return self._index[identity]

    def x_coordinate(self, identity: str) -> int:
        """Where ``identity``'s Shamir shares are evaluated (never 0)."""
        return self.index(identity) + 1

    @cached_property
    def _neighbours(self) -> dict[str, frozenset[str]]:
        graph = self.graph
        return {
            u: frozenset(self.cohort[j] for j in graph.neighbours(i))
            for i, u in enumerate(self.cohort)
        }

    def neighbours(self, identity: str) -> frozenset[str]:
        """The identities adjacent to ``identity`` in the buffer's graph (never itself)."""
        return self._neighbours[identity]

    def as_dict(self) -> dict[str, Any]:
        """Plain scalars (JSON-able) for checkpoints."""
        return {
            "buffer_id": self.buffer_id,
            "cohort": list(self.cohort),
            "dimension": self.dimension,
            "degree": self.degree,
            "threshold": self.threshold,
            "clip": float(self.clip),
            "max_weight": float(self.max_weight),
            "min_contributors": self.min_contributors,
            "noise_multiplier": float(self.noise_multiplier),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BufferSetup:
        fields = dict(data)
        fields["cohort"] = tuple(fields["cohort"])
        return cls(**fields)


def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise ValueError(f"{what} must be a non-empty string of at most {MAX_NAME} characters")
