"""Distributed DP over the broker: workers noise their masked inputs, the aggregator counts each
buffer once and stops at the budget.

Same private node and provisioned users as ``test_secure_aggregation``; four workers, K = 3, z = 1:
a budget of four releases ends the run after exactly four buffer sums.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.shell.checkpoint import load_checkpoint
from harness.secure_node import SecureNode
from privacy.accountant import GaussianEvent, Ledger, epsilon
from tests.e2e.test_secure_aggregation import (
    WORKERS,
    federation_on,
    login,
    provisioned,
    start_workers,
)

pytestmark = [pytest.mark.broker, pytest.mark.e2e]
__all__ = ["provisioned"]  # the fixture, imported for pytest

DELTA = 1e-5
RELEASES = 4


def test_distributed_dp_charges_one_event_per_buffer_sum_and_stops_at_the_budget(
    secure_node: SecureNode, provisioned: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    ns, secrets = provisioned
    fed, ids = federation_on(ns, tmp_path_factory)
    target = epsilon(Ledger().add(GaussianEvent(1.0), RELEASES), DELTA) + 1e-6
    try:
        workers = start_workers(fed, secure_node, secrets, ids)
        agg = fed.aggregator(*flags(secure_node, ns, secrets, target), num_partitions=WORKERS)
        assert agg.wait(timeout=240) == 0, fed.log("aggregator.log")[-3000:]
        for worker in workers:
            assert worker.wait(timeout=60) == 0
    finally:
        fed.close()
    audit = fed.audit()
    opened = [e for e in audit if e["event"] == "secure-buffer-open"]
    sums = [e for e in audit if e["event"] == "secure-buffer-sum"]
    assert opened and all(e["noise_multiplier"] == 1.0 for e in opened)
    assert len(sums) == RELEASES and all(len(s["contributors"]) >= 3 for s in sums)
    summary = fed.summary()
    assert summary is not None and summary["stopped_because"].startswith("privacy budget spent")
    privacy = summary["privacy"]
    assert privacy["mode"] == "distributed" and privacy["releases"] == RELEASES
    # The worst-off worker was in every buffer: its epsilon is that of one event per sum.
    most = max(sum(w in s["contributors"] for s in sums) for w in ids)
    assert privacy["max_participations"] == most
    assert privacy["epsilon"] == pytest.approx(
        epsilon(Ledger().add(GaussianEvent(1.0), most), DELTA)
    )
    assert 0 < privacy["epsilon"] <= target
    state, scalars, _ = load_checkpoint(fed.run_dir / "state")  # type: ignore[misc]
    assert state.finished and scalars["dp"]["epsilon_spent"] == pytest.approx(privacy["epsilon"])


def flags(secure_node: SecureNode, ns: str, secrets: Path, target: float) -> list[str]:
    return [
        *login(secure_node, ns, f"{ns}-aggregator", secrets),
        *("--strategy", "fedbuff", "--secure-aggregation", "--buffer-size", "3"),
        *("--identity", "strict", "--roster-file", str(secrets / "roster.json")),
        *("--secure-stage-timeout", "5", "--max-seconds", "200", "--eval-every", "1"),
        *("--dp", "distributed", "--dp-clip", "1.0", "--dp-noise-multiplier", "1.0"),
        *("--target-epsilon", repr(target), "--target-delta", repr(DELTA)),
    ]
