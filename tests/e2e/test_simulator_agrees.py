"""The simulator against the real pipeline: one configuration run both ways, same accuracy."""

from __future__ import annotations

import math

import pytest

from harness.procs import Federation
from simulator.engine import simulate
from simulator.settings import SimulationSettings

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

SPEEDS = [1, 1, 2, 4]
DELAY = 0.05
VERSIONS = 150
SEEDS = range(6)
#: Beyond the spread of the simulated runs: the real run's own noise (one more run of a few
#: percent).
MARGIN = 0.03


def test_simulated_and_real_fedasync_agree_on_final_accuracy(federation: Federation) -> None:
    fed = federation
    common = ["--num-partitions", str(len(SPEEDS)), "--partition", "dirichlet"]
    agg = fed.aggregator(
        "--strategy",
        "fedasync",
        "--max-versions",
        str(VERSIONS),
        *common,
        num_partitions=len(SPEEDS),
    )
    for i, speed in enumerate(SPEEDS):
        fed.worker(i, "--delay", str(DELAY * speed), num_partitions=len(SPEEDS))
    assert agg.wait(timeout=180) == 0, fed.log("aggregator.log")[-3000:]
    real = fed.summary()
    assert real is not None

    simulated = [
        simulate(
            SimulationSettings(
                strategy="fedasync",
                num_partitions=len(SPEEDS),
                partition="dirichlet",
                max_versions=VERSIONS,
                speeds=",".join(map(str, SPEEDS)),
                duration=f"lognormal:{math.log(DELAY)},0.3",
                sim_seed=seed,
            )
        ).accuracy
        for seed in SEEDS
    ]

    assert all(a is not None for a in simulated), simulated
    finite = [a for a in simulated if a is not None]
    low, high = min(finite) - MARGIN, max(finite) + MARGIN
    assert low <= real["accuracy"] <= high, (real["accuracy"], simulated)
