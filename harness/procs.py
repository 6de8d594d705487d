"""Run real aggregator and worker processes for end-to-end tests, and read what they wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from broker.settings import GUEST, amqp_user
from runtime.eventlog import read_events

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None], timeout: float, what: str, *, interval: float = 0.1
) -> T:
    """Poll until ``predicate`` returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Pumped(Protocol):
    """A connection whose I/O runs only when asked to (``BrokerLink``, ``AmqpSession``)."""

    def process_events(self, time_limit: float) -> None: ...


def pump_until(session: Pumped, condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Run ``session``'s I/O in short slices until ``condition`` holds (``wait_for``'s rules)."""

    def pumped() -> T | None:
        session.process_events(0.05)
        return condition()

    return wait_for(pumped, timeout, what, interval=0)


@dataclass
class Federation:
    """One namespace's processes; every process is killed at ``close``."""

    namespace: str
    amqp_url: str
    run_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _spawn(self, module: str, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "AMQP_URL": self.amqp_url}
        cmd = [sys.executable, "-m", module, "--namespace", self.namespace, *args]
        with open(self.run_dir / log_name, "ab") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def aggregator(self, *flags: str, num_partitions: int = 4) -> subprocess.Popen[bytes]:
        args = [
            "--run-dir",
            str(self.run_dir),
            "--num-partitions",
            str(num_partitions),
            "--progress-interval",
            "0.5",
            *self._open_defences(),
            *flags,
        ]
        return self._spawn("aggregator", args, "aggregator.log")

    def _open_defences(self) -> list[str]:
        """As the shared guest every test worker is "guest": the tests of DP and the robust rules
        run them with open identity, which the aggregator refuses unless told (loudly) otherwise.
        """
        return ["--insecure-open-defences"] if amqp_user(self.amqp_url) == GUEST else []

    def worker(
        self, index: int, *flags: str, num_partitions: int = 4, worker_id: str | None = None
    ) -> subprocess.Popen[bytes]:
        wid = worker_id or f"w{index}"
        args = [
            "--worker-id",
            wid,
            "--partition-index",
            str(index),
            "--num-partitions",
            str(num_partitions),
            "--events-file",
            str(self.run_dir / f"{wid}.events.jsonl"),
            *flags,
        ]
        return self._spawn("worker", args, f"{wid}.log")

    def events(self, name: str) -> list[dict[str, Any]]:
        path = self.run_dir / name
        return list(read_events(path)) if path.exists() else []

    def audit(self) -> list[dict[str, Any]]:
        return self.events("audit.jsonl")

    def worker_events(self, worker_id: str) -> list[dict[str, Any]]:
        return self.events(f"{worker_id}.events.jsonl")

    def summary(self) -> dict[str, Any] | None:
        path = self.run_dir / "summary.json"
        return json.loads(path.read_text()) if path.exists() else None

    def latest_version(self) -> int:
        return max((e["version"] for e in self.audit() if e["event"] == "published"), default=-1)

    def log(self, name: str) -> str:
        path = self.run_dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=10)
