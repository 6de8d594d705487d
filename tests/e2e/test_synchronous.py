"""Synchronous FedAvg on real processes: rounds of every worker, and a dead worker only delays one
round.
"""

from __future__ import annotations

import signal
from collections import Counter

import pytest

from harness.procs import Federation, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def test_fedavg_rounds_take_one_fresh_update_per_worker_and_survive_a_dead_worker(
    federation: Federation,
) -> None:
    fed = federation
    fed.aggregator(
        "--strategy",
        "fedavg",
        "--round-min-workers",
        "2",
        "--worker-timeout",
        "10",
        "--max-seconds",
        "120",
        num_partitions=3,
    )
    workers = [fed.worker(i, "--delay", "0.05", num_partitions=3) for i in range(3)]
    wait_for(lambda: fed.latest_version() >= 5, 60, "five synchronous rounds")

    applied = [e for e in fed.audit() if e["event"] == "applied" and e["version"] < 5]
    per_round = Counter((e["base_version"], e["worker_id"]) for e in applied if e["weight"] > 0)
    assert all(count == 1 for count in per_round.values())
    assert {w for (base, w) in per_round if base == 3} == {"w0", "w1", "w2"}

    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(timeout=10)
    at_kill = fed.latest_version()

    wait_for(
        lambda: fed.latest_version() >= at_kill + 5, 60, "five more rounds without the dead worker"
    )
