"""Drive a federation on a ``RabbitCluster`` through broker-node failures, and time the recovery.

Each process gets the cluster's member list, rotated so that the aggregator
and the workers start on different members; every shared queue is a quorum
queue on all three (``--quorum-group-size 3``). A low client heartbeat lets a
client notice a frozen member. ``Recovery`` rows say how long the federation
took to publish its next version after each fault.

A run is a fixed number of versions, and the fault plan must be over before
it is. Booting a member costs what the machine's load says (tens of seconds
on a loaded one): so while a member boots or a thawed one rejoins, between
faults, the workers are held (SIGSTOP) and no version is spent; the plan
then costs the same versions on any machine. The faults themselves, and the
recoveries they are timed by, run with every worker going.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from harness.procs import Federation, wait_for
from harness.rabbit_cluster import NET_TICKTIME, RabbitCluster

#: Client heartbeat (seconds). pika checks for silence every heartbeat + 5 s, so a client of a
#: member frozen by SIGSTOP notices within 6 to 12 s and moves to another member.
HEARTBEAT = 1
#: A publish waits this long for its confirm at most (then a new connection and the same update
#: again): a quorum queue that lost its majority with a publish in flight may never confirm it.
CONFIRM_TIMEOUT = 5
#: The longest a client of a frozen member can take to move on: pika's silence check can need two
#: rounds (2 x (heartbeat + 5 s)), then a publish in flight waits out its confirm, then the backoff.
WORST_MOVE_ON = 2 * (HEARTBEAT + 5) + CONFIRM_TIMEOUT + 1
#: A pause past the Erlang tick time (the others count the frozen member as gone) and past the
#: clients' worst case to move on, so the federation must go on without it before it thaws. A
#: 16 s pause was shorter than that worst case: on a loaded machine the run resumed only at 22 s.
PAUSE_SECONDS = max(4 * NET_TICKTIME, WORST_MOVE_ON + 2 * NET_TICKTIME)
PROGRESS_TIMEOUT = 120.0
#: The federation has resumed once this many versions were published after the fault (one could
#: be the tail of a batch already on its way when the fault struck).
RESUMED = 5


@dataclass(frozen=True)
class Recovery:
    """One fault: what was done, at which version, and seconds until the next version."""

    fault: str
    version: int
    resumed_after: float | None


def rotated(urls: list[str], start: int) -> str:
    return ",".join(urls[(start + k) % len(urls)] for k in range(len(urls)))


@dataclass
class ClusterRun:
    """One federation (aggregator + workers as real processes) on the cluster."""

    fed: Federation
    cluster: RabbitCluster
    aggregator_flags: list[str]
    worker_flags: list[str]
    workers: int = 3
    say: Callable[[str], None] = print
    recoveries: list[Recovery] = field(default_factory=list)
    aggregator: subprocess.Popen[bytes] | None = None
    rejoining: threading.Thread | None = None

    def common(self, start: int) -> list[str]:
        return [
            "--amqp-url",
            rotated(self.cluster.urls, start),
            "--quorum-group-size",
            str(len(self.cluster.nodes)),
            "--heartbeat",
            str(HEARTBEAT),
            "--connect-backoff-max",
            "1",
            "--confirm-timeout",
            str(CONFIRM_TIMEOUT),
        ]

    def launch(self) -> None:
        self.aggregator = self.fed.aggregator(
            *self.common(0), *self.aggregator_flags, num_partitions=self.workers
        )
        for i in range(self.workers):
            self.fed.worker(i, *self.common(i + 1), *self.worker_flags, num_partitions=self.workers)

    def published(self) -> list[tuple[float, int]]:
        return [(e["time"], e["version"]) for e in self.fed.audit() if e["event"] == "published"]

    def advance(self, versions: int) -> int:
        """Wait for ``versions`` more versions; the newest version then."""
        since = self.fed.latest_version()

        def made() -> int | None:
            if self.aggregator is not None and self.aggregator.poll() is not None:
                raise AssertionError(f"the aggregator exited ({self.aggregator.returncode})")
            latest = self.fed.latest_version()
            return latest if latest >= since + versions else None

        return wait_for(made, PROGRESS_TIMEOUT, f"{versions} versions after v{since}")

    def resumed_after(self, started: float, timeout: float = 60.0) -> float | None:
        """Seconds from ``started`` until ``RESUMED`` versions were published after it (None: they
        did not come within ``timeout``)."""

        def resumed() -> float | None:
            after = [t for t, _ in self.published() if t > started]
            return after[RESUMED - 1] if len(after) >= RESUMED else None

        try:
            at = wait_for(resumed, timeout, f"{RESUMED} versions after the fault")
        except AssertionError:
            return None
        return at - started

    def record(self, fault: str, started: float, version: int) -> Recovery:
        if self.aggregator is not None and self.aggregator.poll() is not None:
            raise AssertionError(f"the run was over before the fault ({fault}, v{version})")
        row = Recovery(fault, version, self.resumed_after(started))
        self.recoveries.append(row)
        took = "never" if row.resumed_after is None else f"{row.resumed_after:.1f}s"
        self.say(f"  v{version:<5} {fault}: next version after {took}")
        return row

    def leader_index(self) -> int:
        leader = wait_for(
            lambda: self.cluster.quorum_leader(self.fed_results()), 30, "the results leader"
        )
        return self.cluster.index_of(leader)

    def fed_results(self) -> str:
        return f"{self.fed.namespace}.results"

    def kill(self, index: int, what: str) -> Recovery:
        version = self.fed.latest_version()
        started = time.time()
        self.cluster.kill(index)
        return self.record(f"SIGKILL {what} (n{index})", started, version)

    def pause(self, index: int, seconds: float = PAUSE_SECONDS) -> Recovery:
        """SIGSTOP a member for ``seconds`` (the federation must go on meanwhile), then SIGCONT."""
        version = self.fed.latest_version()
        started = time.time()
        self.cluster.pause(index)
        try:
            row = self.record(f"SIGSTOP n{index} for {seconds:.0f}s", started, version)
            time.sleep(max(0.0, started + seconds - time.time()))  # the pause's length, not a sync
        finally:
            self.cluster.resume(index)
        with self.held():
            self.cluster.await_members(len(self.cluster.nodes))
        return row

    def restart(self, index: int) -> None:
        """Start a killed member again, the workers held meanwhile (no version spent on it)."""
        with self.held():
            self.cluster.restart(index)

    def workers_procs(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.fed.procs if p is not self.aggregator and p.poll() is None]

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """SIGSTOP the workers for the block, then SIGCONT them and wait until versions come
        again (a held worker's connection may have timed out: it reconnects, as after any
        outage)."""
        held = self.workers_procs()
        for proc in held:
            os.kill(proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for proc in held:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
        self.advance(RESUMED)

    def lose_majority(self, doomed: list[int], quiet: float) -> tuple[list[int], Recovery]:
        """SIGKILL ``doomed`` (all but one member), watch ``quiet`` seconds, restart the first.

        Returns the versions published during the second half of the window (the first half
        lets a batch already on its way land) and the recovery once a majority is back; the
        rest rejoin while the run finishes (``finish`` waits for them). Killed, not frozen: a
        thawed member meets a survivor that had given it up, and autoheal waits for the third.
        """
        started = time.time()
        for index in doomed:
            self.cluster.kill(index)
        time.sleep(quiet)  # the observation window itself, not a synchronisation
        during = [v for t, v in self.published() if started + quiet / 2 < t <= started + quiet]
        self.say(
            f"  {len(doomed)} of {len(self.cluster.nodes)} members killed: {len(during)} "
            f"versions in the last {quiet / 2:.0f} s of {quiet:.0f}"
        )
        self.cluster.boot(doomed[0])  # returns once it accepts clients: a majority is back
        version, back = self.fed.latest_version(), time.time()
        row = self.record(f"majority back (n{doomed[0]} restarted)", back, version)

        def rejoin() -> None:
            for index in doomed[1:]:
                self.cluster.boot(index)

        self.rejoining = threading.Thread(target=rejoin, daemon=True)
        self.rejoining.start()
        return during, row

    def finish(self, timeout: float = 240.0) -> int:
        agg = self.aggregator
        assert agg is not None
        code = agg.wait(timeout=timeout)
        wait_for(lambda: all(p.poll() is not None for p in self.fed.procs), 60, "workers to stop")
        if self.rejoining is not None:
            self.rejoining.join(timeout=180)
            self.cluster.await_members(len(self.cluster.nodes))
        return code
