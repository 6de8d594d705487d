"""Operations, real processes: workers come and go, replicas claim partitions, SIGTERM is clean."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from typing import Any

import pytest

from harness.procs import Federation, wait_for
from tests.e2e.test_pipeline import confirmed_ids, queued_ids

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

#: Each worker sleeps this long per fit, so the update rate is set by the workers, not by our 2
#: CPUs.
PACED = ("--delay", "0.1")
STOP_WITHIN = 10.0


def applied_times(fed: Federation, worker: str | None = None) -> list[float]:
    return [
        e["time"]
        for e in fed.audit()
        if e["event"] == "applied" and worker in (None, e["worker_id"])
    ]


def rate_over_next(fed: Federation, count: int, after: float, timeout: float) -> float:
    """Applied updates per second over the next ``count`` applied after time ``after``."""

    def enough() -> list[float]:
        times = [t for t in applied_times(fed) if t > after]
        return times if len(times) >= count else []

    times = wait_for(enough, timeout, f"{count} updates")
    return (count - 1) / (times[count - 1] - times[0])


def stop_within(proc: subprocess.Popen[bytes], seconds: float) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=seconds + 5)
    took = time.monotonic() - started
    assert code == 0 and took < seconds, f"exit {code} after {took:.1f}s"
    return took


def test_adding_workers_raises_the_update_rate_and_removing_them_does_not_stall(
    federation: Federation,
) -> None:
    fed = federation
    agg = fed.aggregator("--max-seconds", "150", num_partitions=3)
    fed.worker(0, *PACED, num_partitions=3)
    wait_for(lambda: len(applied_times(fed)) >= 5, 60, "the first worker's updates")
    one_worker = rate_over_next(fed, 20, after=0.0, timeout=30)

    late = [fed.worker(i, *PACED, num_partitions=3) for i in (1, 2)]
    joined = wait_for(
        lambda: all(applied_times(fed, w) for w in ("w1", "w2")) and time.time(),
        60,
        "the new workers' updates",
    )
    three_workers = rate_over_next(fed, 60, after=joined, timeout=30)

    for proc in late:
        stop_within(proc, STOP_WITHIN)
    left = time.time()
    wait_for(
        lambda: len([t for t in applied_times(fed, "w0") if t > left]) >= 20,
        30,
        "20 updates after two workers left",
    )
    stop_within(agg, STOP_WITHIN)

    assert three_workers > 1.8 * one_worker, (one_worker, three_workers)


def claims(fed: Federation, worker: str) -> list[dict[str, Any]]:
    return [e for e in fed.worker_events(worker) if e["event"] == "partition-claimed"]


def test_replicas_claim_distinct_partitions_and_a_standby_takes_over_a_dead_ones(
    federation: Federation,
) -> None:
    fed = federation
    fed.aggregator("--max-seconds", "150", num_partitions=2)
    replicas = {
        f"r{i}": fed.worker(0, "--claim-partition", *PACED, num_partitions=2, worker_id=f"r{i}")
        for i in range(3)
    }

    def holders_once_two_claimed() -> list[str]:
        holding = [w for w in replicas if claims(fed, w)]
        return holding if len(holding) == 2 else []

    holders = wait_for(holders_once_two_claimed, 60, "two claims")
    standby = wait_for(
        lambda: next(
            (w for w in replicas if any(e["event"] == "standby" for e in fed.worker_events(w))),
            None,
        ),
        30,
        "a standby",
    )
    victim = holders[0]
    freed = claims(fed, victim)[0]["partition"]
    wait_for(lambda: applied_times(fed, victim), 30, "an update from the replica to be killed")

    replicas[victim].send_signal(signal.SIGKILL)
    replicas[victim].wait(timeout=10)
    killed_at = time.time()

    taken = wait_for(lambda: claims(fed, standby), 30, "the standby to claim the freed partition")
    wait_for(
        lambda: [t for t in applied_times(fed, standby) if t > killed_at],
        30,
        "an update from the former standby",
    )
    assert standby not in holders and taken[0]["partition"] == freed
    confirmed = {
        w: {e["partition"] for e in fed.worker_events(w) if e["event"] == "confirmed"}
        for w in replicas
    }
    assert confirmed[standby] == {freed} and confirmed[holders[1]] == {1 - freed}
    assert (
        min(e["time"] for e in fed.worker_events(standby) if e["event"] == "confirmed") > killed_at
    )


def test_every_component_stops_within_10s_on_sigterm_and_no_confirmed_update_is_lost(
    federation: Federation,
) -> None:
    fed = federation
    agg = fed.aggregator("--max-seconds", "150", "--log-json", num_partitions=2)
    fast = fed.worker(0, "--log-json", *PACED, num_partitions=2)
    slow = fed.worker(
        1, "--log-json", "--delay", "3", num_partitions=2
    )  # mid-fit when the signal comes
    wait_for(
        lambda: applied_times(fed, "w1") and fed.latest_version() >= 20,
        60,
        "both workers contributing",
    )

    for proc in (fast, slow, agg):
        proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    codes = [proc.wait(timeout=STOP_WITHIN + 5) for proc in (fast, slow, agg)]
    took = time.monotonic() - started

    assert codes == [0, 0, 0] and took < STOP_WITHIN, (codes, took)
    applied = [e["update_id"] for e in fed.audit() if e["event"] == "applied"]
    assert sorted(confirmed_ids(fed, ["w0", "w1"])) == sorted(
        applied + queued_ids(fed.amqp_url, fed.namespace)
    )
    for log_name in ("aggregator.log", "w0.log", "w1.log"):
        records = [
            json.loads(line) for line in fed.log(log_name).splitlines()
        ]  # every line is JSON
        startup = " ".join(r["message"] for r in records[:3])
        assert "amqp_url=amqp://guest:***@" in startup and "connected to RabbitMQ" in fed.log(
            log_name
        )
        assert ":guest@" not in fed.log(log_name)
