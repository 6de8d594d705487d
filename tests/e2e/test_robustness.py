"""Poisoning with 8 real workers, 2 of them malicious: each defence keeps accuracy, no defence does
not.

A compact slice of ``python -m bench.robustness_processes`` (which runs every attack
with 1 and 2 attackers and writes the table): the clean run is the
reference, and the undefended run proves the attack bites, so the defended
assertions can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.robust_runs import Scenario, run_scenario

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

TOLERANCE = 0.02


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("robustness")


@pytest.fixture(scope="module")
def clean_accuracy(amqp_url: str, base_dir: Path) -> dict[str, float]:
    """Final accuracy of each strategy with 8 honest workers."""
    return {
        s: run_scenario(amqp_url, base_dir, Scenario(s, "none"))["accuracy"]
        for s in ("fedasync", "fedbuff")
    }


def test_without_a_defence_two_sign_flipping_attackers_wreck_fedasync(
    amqp_url: str, base_dir: Path, clean_accuracy: dict[str, float]
) -> None:
    summary = run_scenario(amqp_url, base_dir, Scenario("fedasync", "none", "flip", 2))

    assert summary["accuracy"] < clean_accuracy["fedasync"] - TOLERANCE, (
        summary["accuracy"],
        clean_accuracy,
    )


@pytest.mark.parametrize(
    "scenario",
    [Scenario("fedasync", "norm-bound", "flip", 2), Scenario("fedbuff", "median", "scale", 2)],
    ids=lambda s: s.label,
)
def test_a_defence_keeps_accuracy_within_two_points_of_the_clean_run(
    amqp_url: str, base_dir: Path, clean_accuracy: dict[str, float], scenario: Scenario
) -> None:
    summary = run_scenario(amqp_url, base_dir, scenario)

    assert summary["accuracy"] >= clean_accuracy[scenario.strategy] - TOLERANCE, (
        summary,
        clean_accuracy,
    )
    assert summary["version"] >= 40
