"""What a restarted aggregator must carry over besides the model: the norm bound's calibration."""

from __future__ import annotations

import signal

import pytest

from fedmq.audit import split_lives
from harness.procs import Federation

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def test_a_restart_keeps_the_norm_bound_calibrated(federation: Federation) -> None:
    fed = federation
    flags = ["--norm-bound", "3", "--max-versions", "30"]
    # Five norms from three workers calibrate the bound; three commits come after them.
    crashed = fed.aggregator(*flags, "--failpoint", "after-checkpoint:3", num_partitions=3)
    workers = [fed.worker(i, "--delay", "0.02", num_partitions=3) for i in range(3)]
    assert crashed.wait(timeout=60) == -signal.SIGKILL, fed.log("aggregator.log")[-2000:]

    restarted = fed.aggregator(*flags, num_partitions=3)

    assert restarted.wait(timeout=90) == 0, fed.log("aggregator.log")[-2000:]
    for worker in workers:
        worker.wait(timeout=30)
    first, second = split_lives(fed.audit())
    calibrating = [
        [e for e in life if e.get("reason") == "norm-calibrating"] for life in (first, second)
    ]
    assert len(calibrating[0]) >= 5  # the first life calibrated (until three workers had sent) ...
    assert calibrating[1] == []  # ... and the second carried on with its bound
