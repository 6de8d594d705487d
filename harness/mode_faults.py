"""One seeded fault-injection run of one aggregation mode, on a private RabbitMQ node.

The aggregator starts armed with a failpoint and SIGKILLs itself there; the
restarted one then meets, in a seeded order and after seeded numbers of
versions: a SIGKILL at a random moment, a hard broker crash (SIGKILL of the
node's Erlang VM, then a start from its data), a worker SIGKILLed in the
middle of a fit, and a SIGSTOP of the aggregator longer than its heartbeat
(the broker drops its connection and requeues its deliveries; after SIGCONT
it must notice and reconnect). A witness (``harness.witness``) records every
version broadcast. ``tests/e2e/test_fault_modes.py`` runs it per mode in CI,
``bench/fault_soak.py`` for longer.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from aggregator.shell.failpoints import POINTS
from harness.mode_judge import Verdict
from harness.procs import Federation, wait_for
from harness.rabbit_node import RabbitNode
from privacy.accountant import GaussianEvent, Ledger, epsilon

#: Every fit takes at least this long, so a worker can be caught in the middle of one.
FIT_SECONDS = 0.05
#: The aggregator's heartbeat in these runs, and how long it is stopped (past two missed beats).
HEARTBEAT = 1
STALL_SECONDS = 3.5
WORKER_KILL_ATTEMPTS = 10
#: Versions made after the last fault before the run is stopped.
TAIL_VERSIONS = 5
MIDDLE_FAULTS = ("timed-kill", "broker-crash", "worker-kill", "stall")


DELTA = 1e-5
#: DP: z = 2 with 3 workers and K = 2; the budget allows each worker 300 releases, and ends the run
#: (restarts make versions in bursts from the backlog: 100 were spent before the plan was through).
DP_BUDGET = epsilon(Ledger().add(GaussianEvent(2.0), 300), DELTA) + 1e-6
MODES: dict[str, list[str]] = {
    "fedasync": ["--strategy", "fedasync", "--max-versions", "100000"],
    "fedbuff": ["--strategy", "fedbuff", "--buffer-size", "3", "--max-versions", "100000"],
    "fedavg": ["--strategy", "fedavg", "--round-min-workers", "2", "--worker-timeout", "10"]
    + ["--max-versions", "100000"],
    "dp": ["--strategy", "fedbuff", "--buffer-size", "2", "--dp", "central", "--dp-clip", "0.5"]
    + [
        "--dp-noise-multiplier",
        "2",
        "--target-epsilon",
        repr(DP_BUDGET),
        "--max-versions",
        "100000",
    ]
    # Seeded: a restart that replayed the noise stream instead of restoring it would repeat draws.
    + ["--dp-seed", "1"],
    "norm-bound": ["--strategy", "fedasync", "--norm-bound", "3", "--max-versions", "100000"],
    "robust-fedbuff": ["--strategy", "fedbuff", "--aggregation", "median", "--buffer-size", "3"]
    + ["--max-versions", "100000"],
}


@dataclass(frozen=True)
class Plan:
    failpoint: str
    middle: list[tuple[str, int]]  # (fault, versions to wait for before it)
    delay: float  # of the timed kill after its versions
    victim: int  # the worker killed mid-fit


def make_plan(
    seed: int, mode_index: int, *, rounds: int = 1, min_gap: int = 3, max_gap: int = 8
) -> Plan:
    """The failpoint rotates with the mode; the order and spacing of the rest is seeded, each of
    them ``rounds`` times (the soak).
    """
    rng = random.Random(seed * 1000 + mode_index)
    middle = list(MIDDLE_FAULTS) * rounds
    rng.shuffle(middle)
    return Plan(
        failpoint=f"{POINTS[mode_index % len(POINTS)]}:{rng.randint(2, 4)}",
        middle=[(fault, rng.randint(min_gap, max_gap)) for fault in middle],
        delay=rng.uniform(0.0, 0.25),
        victim=rng.randrange(3),
    )


@dataclass
class ModeRun:
    """Drives one federation through a plan and counts what it survived."""

    fed: Federation
    node: RabbitNode
    aggregator_flags: list[str]
    workers: int = 3
    ends_by_itself: bool = False
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    survived: list[str] = field(default_factory=list)

    def aggregator_args(self, failpoint: str | None) -> list[str]:
        flags = [*self.aggregator_flags, "--heartbeat", str(HEARTBEAT)]
        return [
            *flags,
            "--connect-backoff-max",
            "1",
            *(["--failpoint", failpoint] if failpoint else []),
        ]

    def launch_aggregator(self, failpoint: str | None = None) -> None:
        self.procs["aggregator"] = self.fed.aggregator(
            *self.aggregator_args(failpoint), num_partitions=self.workers
        )

    def launch_worker(self, index: int) -> None:
        self.procs[f"w{index}"] = self.fed.worker(
            index,
            "--delay",
            str(FIT_SECONDS),
            "--connect-backoff-max",
            "1",
            num_partitions=self.workers,
        )

    def run(self, plan: Plan) -> None:
        self.launch_aggregator(plan.failpoint)
        for index in range(self.workers):
            self.launch_worker(index)
        self.expect_kill(f"failpoint {plan.failpoint}")
        self.launch_aggregator()
        for fault, gap in plan.middle:
            self.progress(gap)
            getattr(self, fault.replace("-", "_"))(plan)
        self.finish()

    def progress(self, versions: int) -> None:
        since = self.fed.latest_version()

        def made() -> bool:
            agg = self.procs["aggregator"]
            if agg.poll() is not None and not self.ends_by_itself:
                raise AssertionError(f"the aggregator exited ({agg.returncode}) mid-plan")
            return self.fed.latest_version() >= since + versions or agg.poll() is not None

        wait_for(made, 120, f"{versions} more versions after v{since}")

    def expect_kill(self, what: str) -> None:
        agg = self.procs["aggregator"]
        code = agg.wait(timeout=120)
        assert code == -signal.SIGKILL, (
            f"{what}: exit {code}\n" + self.fed.log("aggregator.log")[-2000:]
        )
        self.survived.append(f"aggregator SIGKILL at {what}")

    def timed_kill(self, plan: Plan) -> None:
        time.sleep(plan.delay)  # the random moment of the kill, not a synchronisation
        self.procs["aggregator"].send_signal(signal.SIGKILL)
        self.expect_kill(f"a random moment ({plan.delay * 1000:.0f} ms after a version)")
        self.launch_aggregator()

    def broker_crash(self, plan: Plan) -> None:
        before = self.outages()
        self.node.kill()
        self.node.start()
        wait_for(lambda: self.outages() > before, 60, "the aggregator to notice the broker crash")
        self.survived.append("broker SIGKILL (Erlang VM) and restart")

    def stall(self, plan: Plan) -> None:
        agg = self.procs["aggregator"]
        before = self.outages()
        agg.send_signal(signal.SIGSTOP)
        time.sleep(STALL_SECONDS)  # the length of the stall is the fault itself
        agg.send_signal(signal.SIGCONT)
        wait_for(lambda: self.outages() > before, 60, "the stalled aggregator to reconnect")
        self.survived.append(f"aggregator SIGSTOP {STALL_SECONDS:g} s (heartbeat {HEARTBEAT} s)")

    def worker_kill(self, plan: Plan) -> None:
        """SIGKILL a worker less than a fit's duration after it started one (its update is not
        out); a kill that comes too late on a loaded machine is repeated on the restarted worker.
        """
        worker, killed = f"w{plan.victim}", 0.0
        for _ in range(WORKER_KILL_ATTEMPTS):
            fit = self.wait_for_fit(worker, after=killed)
            killed = time.time()
            self.procs[worker].send_signal(signal.SIGKILL)
            self.procs[worker].wait(timeout=30)
            self.launch_worker(plan.victim)
            if killed - fit["time"] < FIT_SECONDS:
                self.survived.append(f"worker {worker} SIGKILL mid-fit")
                return
        raise AssertionError(f"could not kill {worker} within {FIT_SECONDS}s of a fit's start")

    def wait_for_fit(self, worker: str, *, after: float) -> dict[str, Any]:
        def training() -> dict[str, Any] | None:
            events = self.fed.worker_events(worker)
            last = events[-1] if events else None
            fresh = last is not None and last["event"] == "training" and last["time"] > after
            return last if fresh else None

        return wait_for(training, 60, f"{worker} to start a fit", interval=0.002)

    def outages(self) -> int:
        return self.fed.log("aggregator.log").count("lost the broker")

    def finish(self) -> None:
        """A few more versions, then stop (SIGTERM) unless the run ends by itself (a DP budget)."""
        self.progress(TAIL_VERSIONS)
        agg = self.procs["aggregator"]
        if not self.ends_by_itself:
            agg.send_signal(signal.SIGTERM)
        assert agg.wait(timeout=180) == 0, self.fed.log("aggregator.log")[-3000:]
        for name, proc in self.procs.items():
            if name != "aggregator" and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        wait_for(lambda: all(p.poll() is not None for p in self.procs.values()), 60, "the end")


def describe(run: ModeRun, judged: Verdict) -> str:
    """One line: what the run survived and what the two judges found."""
    audit = judged.audit
    return (
        f"survived {len(run.survived)} faults ({'; '.join(run.survived)}); "
        f"confirmed {audit.confirmed} -> {dict(audit.fates)}; versions published "
        f"{audit.versions}, witnessed {judged.witnessed_versions}; lost {judged.lost}, applied "
        f"twice {judged.applied_twice}; problems: audit {len(audit.problems)}, independent "
        f"{len(judged.independent)}, privacy {len(judged.privacy)}"
    )
