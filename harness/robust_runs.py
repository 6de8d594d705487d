"""One robustness run: an aggregator and 8 workers (some malicious) on the shared broker, real
processes.

Used by ``tests/e2e/test_robustness.py`` (a compact matrix) and
``bench/robustness_processes.py`` (the process-based table). Data is split IID so that
leaving the attackers' partitions out costs the defended runs nothing by
itself: any accuracy gap is the attack's (or the defence's) doing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.connection import AmqpSession
from broker.names import Names
from broker.settings import BrokerSettings
from broker.topology import delete_topology
from harness.procs import Federation

WORKERS = 8
#: Seconds added to every fit: keeps 8 workers from spinning on two shared cores, which would make
#: staleness (not the attack) decide the result.
FIT_DELAY = "0.1"
DEFENCES: dict[str, tuple[str, ...]] = {
    "none": (),
    "norm-bound": ("--norm-bound", "3"),
    "norm-clip": ("--norm-bound", "3", "--norm-action", "clip"),
    "median": ("--aggregation", "median"),
    "trimmed-mean": ("--aggregation", "trimmed-mean", "--trim-fraction", "0.3"),
}
STRATEGY_FLAGS: dict[str, tuple[str, ...]] = {
    "fedasync": ("--strategy", "fedasync", "--max-versions", "300"),
    "fedbuff": ("--strategy", "fedbuff", "--buffer-size", "8", "--max-versions", "40"),
}


@dataclass(frozen=True)
class Scenario:
    strategy: str
    defence: str
    attack: str | None = None
    attackers: int = 0

    @property
    def label(self) -> str:
        attack = f"{self.attackers}x{self.attack}" if self.attack else "clean"
        return f"{self.strategy}/{self.defence}/{attack}"


def run_scenario(
    amqp_url: str, base_dir: Path, scenario: Scenario, *, timeout: float = 300.0
) -> dict[str, Any]:
    """Run to the version limit; the aggregator's summary (``accuracy``, ``rejected`` ...)."""
    namespace = f"r-{uuid.uuid4().hex[:10]}"
    run_dir = base_dir / f"{scenario.label.replace('/', '_')}-{namespace}"
    run_dir.mkdir(parents=True, exist_ok=True)
    fed = Federation(namespace=namespace, amqp_url=amqp_url, run_dir=run_dir)
    common = ("--partition", "iid", "--num-partitions", str(WORKERS))
    try:
        agg = fed.aggregator(
            *common,
            *STRATEGY_FLAGS[scenario.strategy],
            *DEFENCES[scenario.defence],
            num_partitions=WORKERS,
        )
        for i in range(WORKERS):
            trainer = (
                ("--trainer", f"harness.attacks:{scenario.attack}")
                if i < scenario.attackers
                else ()
            )
            fed.worker(i, *common, "--delay", FIT_DELAY, *trainer, num_partitions=WORKERS)
        code = agg.wait(timeout=timeout)
        summary = fed.summary()
        if code != 0 or summary is None:
            raise RuntimeError(
                f"{scenario.label}: aggregator exited {code}\n{fed.log('aggregator.log')[-2000:]}"
            )
        return summary
    finally:
        fed.close()
        with AmqpSession(BrokerSettings(amqp_url=amqp_url, namespace=namespace)) as session:
            delete_topology(session, Names(namespace))
