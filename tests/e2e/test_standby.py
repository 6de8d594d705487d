"""A standby aggregator: one active per federation, and a takeover within seconds of a SIGKILL;
a second aggregator on another state directory waits on the broker's lease.

Two aggregators share one run directory (and so one state directory). The
second must stand by (no ``start`` line, no version of its own) while the
first lives; when the active one is SIGKILLed the standby takes the state
directory's lock, restores the checkpoint and publishes the next version.
This is repeated (a fresh standby for each kill) and each takeover time is
printed; at the end every update a worker saw confirmed must be applied
exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from broker.settings import BrokerSettings
from fedmq.audit import check_run
from fedmq.commands.audit import gather_evidence, queue_contents, worker_event_files
from harness.procs import Federation, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

TAKEOVERS = 3
#: The takeover floor: the first new version at most this long after the SIGKILL.
TAKEOVER_SECONDS = 5.0
FLAGS = ["--max-versions", "100000", "--connect-backoff-max", "1"]


def standby_count(fed: Federation) -> int:
    return fed.log("aggregator.log").count("standing by")


def starts(fed: Federation) -> int:
    return sum(1 for e in fed.audit() if e["event"] == "start")


def take_over(fed: Federation, active: subprocess.Popen[bytes]) -> tuple[float, int]:
    """Start a standby, SIGKILL ``active``; the seconds until the standby's first new version."""
    standbys = standby_count(fed)
    lives = starts(fed)
    fed.aggregator(*FLAGS)
    wait_for(lambda: standby_count(fed) > standbys, 60, "the second aggregator to stand by")
    mark = fed.latest_version()
    wait_for(lambda: fed.latest_version() >= mark + 10, 60, "ten versions beside the standby")
    assert starts(fed) == lives  # the standby neither started a life nor published

    killed = time.time()
    active.send_signal(signal.SIGKILL)
    active.wait(timeout=10)
    at_kill = fed.latest_version()

    def first_new_version() -> float | None:
        times = [
            e["time"] for e in fed.audit() if e["event"] == "published" and e["version"] > at_kill
        ]
        return min(times) if times else None

    return wait_for(
        first_new_version, 60, "the standby's first new version", interval=0.01
    ) - killed, at_kill


def test_a_standby_takes_over_within_seconds_and_nothing_is_lost(
    federation: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = federation
    active = fed.aggregator(*FLAGS)
    workers = [fed.worker(i, "--delay", "0.1") for i in range(3)]
    wait_for(lambda: fed.latest_version() >= 10, 60, "ten versions")

    seconds = []
    for _ in range(TAKEOVERS):
        took, at_kill = take_over(fed, active)
        seconds.append(took)
        active = fed.procs[-1]
    with capsys.disabled():
        print(
            "\nstandby takeover, SIGKILL to first new version: "
            + ", ".join(f"{s:.2f} s" for s in seconds)
        )

    active.send_signal(signal.SIGTERM)
    active.wait(timeout=60)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    settings = BrokerSettings(amqp_url=fed.amqp_url, namespace=fed.namespace, connect_attempts=3)
    report = check_run(
        gather_evidence(
            fed.run_dir,
            event_files=worker_event_files(fed.run_dir, None),
            queues=queue_contents(settings),
        )
    )
    assert report.ok, report.problems
    assert len(report.lives) == TAKEOVERS + 1
    assert max(seconds) <= TAKEOVER_SECONDS, seconds


def published(fed: Federation) -> list[dict[str, object]]:
    return [e for e in fed.audit() if e["event"] == "published"]


def test_a_second_aggregator_on_another_state_directory_publishes_nothing_beside_the_first(
    federation: Federation, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = federation
    active = first.aggregator(*FLAGS)
    first.worker(0, "--delay", "0.05")
    wait_for(lambda: first.latest_version() >= 5, 60, "five versions")
    # The same namespace, a state directory of its own: no file lock can see the first one.
    second = Federation(first.namespace, first.amqp_url, tmp_path_factory.mktemp("elsewhere"))
    try:
        other = second.aggregator(*FLAGS)
        wait_for(lambda: "holds the lease" in second.log("aggregator.log"), 60, "it to wait")
        mark = first.latest_version()
        wait_for(lambda: first.latest_version() >= mark + 10, 60, "ten versions beside it")
        assert published(second) == []  # no version, no answer to a model request of its own

        killed = time.time()
        active.send_signal(signal.SIGKILL)
        active.wait(timeout=10)
        wait_for(lambda: published(second), 30, "the second aggregator to take the lease")
        assert min(float(str(e["time"])) for e in published(second)) > killed
        other.send_signal(signal.SIGTERM)
        assert other.wait(timeout=60) == 0
    finally:
        second.close()
