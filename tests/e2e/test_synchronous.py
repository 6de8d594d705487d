"""Synchronous FedAvg on real processes: rounds of every worker, and a dead worker only delays one
round.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest

from harness.procs import Federation, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

#: Longer than an aggregator takes to restart, so the slow worker's update cannot already wait in
#: the queue when the restarted aggregator first looks at its round.
SLOW_FIT_SECONDS = 8.0


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


def test_a_clean_fedavg_run_passes_the_audit(federation: Federation) -> None:
    fed = federation
    agg = fed.aggregator(
        "--strategy", "fedavg", "--round-min-workers", "2", "--max-versions", "6", num_partitions=2
    )
    workers = [fed.worker(i, "--delay", "0.02", num_partitions=2) for i in range(2)]
    assert agg.wait(timeout=60) == 0, fed.log("aggregator.log")[-2000:]
    for worker in workers:
        worker.wait(timeout=30)

    audit = subprocess.run(  # updates sent after the last round still wait in the queue
        [sys.executable, "-m", "fedmq", "audit", str(fed.run_dir), "--check-queues"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AMQP_URL": fed.amqp_url, "FEDMQ_NAMESPACE": fed.namespace},
    )

    assert audit.returncode == 0, audit.stdout + audit.stderr
    rounds = [e for e in fed.audit() if e["event"] == "round"]
    assert [e["version"] for e in rounds] == [1, 2, 3, 4, 5, 6]


def test_a_half_filled_round_waits_for_its_workers_after_a_restart(
    federation: Federation,
) -> None:
    fed = federation
    flags = ["--strategy", "fedavg", "--max-versions", "2", "--worker-timeout", "60"]
    # The first commit holds the fast worker's contribution to round 0: crash right after it.
    crashed = fed.aggregator(*flags, "--failpoint", "after-checkpoint:1", num_partitions=2)
    fed.worker(0, "--delay", "0.02", num_partitions=2)
    fed.worker(1, "--delay", str(SLOW_FIT_SECONDS), num_partitions=2)
    assert crashed.wait(timeout=60) == -signal.SIGKILL, fed.log("aggregator.log")[-2000:]

    restarted = fed.aggregator(*flags, num_partitions=2)

    assert restarted.wait(timeout=90) == 0, fed.log("aggregator.log")[-2000:]
    first_round = next(e for e in fed.audit() if e["event"] == "round")
    assert first_round["version"] == 1
    assert first_round["contributors"] == 2  # not closed at once with the fast worker alone
