"""Fault injection: an aggregator and 4 workers on digits, SIGKILLed, with RabbitMQ restarted, lose
nothing.

In one run on a private RabbitMQ node: the aggregator is SIGKILLed five times
(two at random moments, three at the failpoints between its durable steps)
and restarted each time; RabbitMQ is restarted once; one worker is SIGKILLed
in the middle of a fit and restarted. The audit must then find every
confirmed update applied exactly once (or rejected with a reason, or still
queued), every version published with one set of weights, and the final
accuracy within 2 points of the same run without faults. The plan is seeded
(``FEDMQ_FAULT_SEED``) and printed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from broker.settings import BrokerSettings
from fedmq.audit import AuditReport, check_run, split_lives
from fedmq.commands.audit import gather_evidence, queue_contents, worker_event_files
from harness.faults import Fault, crash_effect, make_plan, next_failpoint, published_before_crash
from harness.procs import Federation, wait_for
from harness.rabbit_node import RabbitNode

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

FAULT_SEED = int(os.environ.get("FEDMQ_FAULT_SEED", "7"))
#: Each aggregator restart costs up to ~100 versions of stale backlog (max staleness 100): the
#: fault phase ends well before this, and the run then recovers for several hundred versions.
MAX_VERSIONS = 1500
WORKERS = ["w0", "w1", "w2", "w3"]
TASK = ["--partition", "dirichlet", "--dirichlet-alpha", "0.5", "--connect-backoff-max", "1"]
AGGREGATOR_FLAGS = ["--max-versions", str(MAX_VERSIONS), "--strategy", "fedasync", *TASK]
#: Every device takes at least 50 ms per fit: a worker can be caught in the middle of one.
FIT_SECONDS = 0.05
WORKER_FLAGS = ["--delay", str(FIT_SECONDS), *TASK]
#: A kill that comes too late to prove the fit had not finished is repeated on the restarted worker.
WORKER_KILL_ATTEMPTS = 10
ACCURACY_TOLERANCE = 0.02


class RunDriver:
    """Drives one federation through a fault plan (the baseline: an empty one), and says so."""

    def __init__(self, fed: Federation, node: RabbitNode, say: Callable[[str], None]) -> None:
        self.fed, self.node, self.say = fed, node, say
        self.started = time.monotonic()
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.aggregator: subprocess.Popen[bytes] | None = None
        self.crashes: list[tuple[Fault, int]] = []

    def launch_aggregator(self, failpoint: str | None) -> None:
        self.aggregator = self.fed.aggregator(
            *AGGREGATOR_FLAGS, *(["--failpoint", failpoint] if failpoint else [])
        )

    def launch_worker(self, worker: str) -> None:
        self.workers[worker] = self.fed.worker(
            WORKERS.index(worker), *WORKER_FLAGS, worker_id=worker
        )

    def progress(self, versions: int, since: int) -> None:
        def made() -> bool:
            if self.aggregator is not None and self.aggregator.poll() is not None:
                raise AssertionError(
                    f"the aggregator exited ({self.aggregator.returncode}) before the plan was done"
                )
            return self.fed.latest_version() >= since + versions

        wait_for(made, 120, f"{versions} more versions after v{since}")

    def kill_aggregator(self, fault: Fault) -> None:
        agg = self.aggregator
        assert agg is not None
        if fault.failpoint:
            wait_for(
                lambda: agg.poll() is not None, 120, f"the aggregator to crash at {fault.failpoint}"
            )
        else:
            time.sleep(fault.delay)  # the random moment of the kill, not a synchronisation
            agg.send_signal(signal.SIGKILL)
        code = agg.wait(timeout=30)
        assert code == -signal.SIGKILL, (
            f"{fault.describe()}: exit {code}\n" + self.fed.log("aggregator.log")[-2000:]
        )
        self.crashes.append((fault, self.audit_lives()))

    def kill_worker_mid_fit(self, worker: str) -> None:
        """SIGKILL ``worker`` less than a fit's duration after it started one (so its update cannot
        be out).
        """
        killed = 0.0
        for attempt in range(1, WORKER_KILL_ATTEMPTS + 1):
            fit = self.wait_for_fit(worker, after=killed)
            killed = time.time()
            self.workers[worker].send_signal(signal.SIGKILL)
            self.workers[worker].wait(timeout=30)
            self.launch_worker(worker)
            into = killed - fit["time"]
            if into < FIT_SECONDS:
                self.say(
                    f"{worker} died {into * 1000:.0f} ms into a fit on v{fit['base_version']} "
                    f"(attempt {attempt}): its update was never sent"
                )
                return
            self.say(
                f"{worker} killed {into * 1000:.0f} ms after starting a fit, too late to be sure; "
                f"again"
            )
        raise AssertionError(f"could not kill {worker} within {FIT_SECONDS}s of a fit's start")

    def wait_for_fit(self, worker: str, *, after: float) -> dict[str, Any]:
        """The ``training`` event of the fit ``worker`` is in now (a process started after
        ``after``).
        """

        def training() -> dict[str, Any] | None:
            events = self.fed.worker_events(worker)
            last = events[-1] if events else None
            return (
                last
                if last is not None and last["event"] == "training" and last["time"] > after
                else None
            )

        return wait_for(training, 60, f"{worker} to start a fit", interval=0.002)

    def inject(self, fault: Fault, done: int, plan: list[Fault]) -> None:
        if fault.kills_aggregator:
            self.kill_aggregator(fault)
            self.launch_aggregator(next_failpoint(plan, done + 1))
        elif fault.kind == "restart-broker":
            self.node.restart()
        else:
            assert fault.worker is not None
            self.kill_worker_mid_fit(fault.worker)

    def run(self, plan: list[Fault]) -> None:
        self.launch_aggregator(next_failpoint(plan, 0))
        for worker in WORKERS:
            self.launch_worker(worker)
        mark = 0
        for done, fault in enumerate(plan):
            if not fault.failpoint:
                self.progress(fault.gap, since=mark)
            self.inject(fault, done, plan)
            mark = self.fed.latest_version()
            self.say(f"  {time.monotonic() - self.started:5.1f}s  v{mark:<5} {fault.describe()}")
        self.finish()

    def finish(self) -> None:
        agg = self.aggregator
        assert agg is not None
        assert agg.wait(timeout=180) == 0, self.fed.log("aggregator.log")[-3000:]
        wait_for(
            lambda: all(p.poll() is not None for p in self.workers.values()),
            60,
            "the workers to stop",
        )
        self.say(
            f"  {time.monotonic() - self.started:5.1f}s  v{self.fed.latest_version():<5} finished"
        )

    def audit_lives(self) -> int:
        return sum(1 for e in self.fed.audit() if e["event"] == "start")


def audit(fed: Federation, node: RabbitNode) -> AuditReport:
    settings = BrokerSettings(amqp_url=node.amqp_url, namespace=fed.namespace, connect_attempts=3)
    evidence = gather_evidence(
        fed.run_dir,
        event_files=worker_event_files(fed.run_dir, None),
        queues=queue_contents(settings),
    )
    return check_run(evidence)


def final_accuracy(fed: Federation) -> float:
    summary = fed.summary()
    assert summary is not None and summary["accuracy"] is not None, fed.log("aggregator.log")[
        -3000:
    ]
    return float(summary["accuracy"])


def test_crashes_and_a_broker_restart_lose_nothing_and_cost_no_accuracy(
    rabbit_node: RabbitNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_path = tmp_path / "faults.log"

    def say(line: str) -> None:
        with capsys.disabled(), open(log_path, "a") as fh:
            print(line, flush=True)
            fh.write(line + "\n")

    plan = make_plan(FAULT_SEED, WORKERS)
    say(
        f"\nfault-injection run, seed {FAULT_SEED} (FEDMQ_FAULT_SEED), {MAX_VERSIONS} versions, 4 "
        f"workers on digits"
    )
    baseline = Federation(
        namespace="baseline", amqp_url=rabbit_node.amqp_url, run_dir=tmp_path / "baseline"
    )
    faulty = Federation(
        namespace="faults", amqp_url=rabbit_node.amqp_url, run_dir=tmp_path / "faults"
    )
    for fed in (baseline, faulty):
        fed.run_dir.mkdir()
    try:
        RunDriver(baseline, rabbit_node, say).run([])
        say(f"  baseline without faults: accuracy {final_accuracy(baseline):.4f}")
        driver = RunDriver(faulty, rabbit_node, say)
        driver.run(plan)
    finally:
        baseline.close()
        faulty.close()

    report = audit(faulty, rabbit_node)
    for line in report.lines():
        say("  " + line)
    lives = report.lives
    events = split_lives(faulty.audit())
    effects = [
        (
            fault,
            crash_effect(lives[i - 1], lives[i]),
            published_before_crash(events[i - 1], events[i]),
        )
        for fault, i in driver.crashes
    ]
    for fault, effect, was_published in effects:
        said = "published" if was_published else "not yet published"
        say(f"crash '{fault.kind}' landed {effect}; the version it resumed at was {said} before it")
    outages = {
        name: faulty.log(f"{name}.log").count("lost the broker")
        for name in ["aggregator", *WORKERS]
    }
    say(
        "  reconnections after losing the broker: "
        + ", ".join(f"{n} {c}" for n, c in outages.items())
    )
    accuracy, reference = final_accuracy(faulty), final_accuracy(baseline)
    say(f"  accuracy with faults {accuracy:.4f}, without {reference:.4f}")

    assert report.ok, report.problems
    assert len(driver.crashes) == 5 and len(lives) == 6
    assert all(outages.values()), outages  # every process lived through the broker restart
    landed = {fault.kind: effect for fault, effect, _ in effects}
    published = {fault.kind: was_published for fault, _, was_published in effects}
    assert landed["before-checkpoint"].startswith("between audit and checkpoint")
    assert landed["after-checkpoint"].startswith("after the checkpoint")
    assert landed["after-publish"].startswith("after the checkpoint")
    assert (
        not published["after-checkpoint"] and published["after-publish"]
    )  # and republished with one digest
    assert abs(accuracy - reference) <= ACCURACY_TOLERANCE
