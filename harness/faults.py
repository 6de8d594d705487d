"""A seeded plan of faults for the fault-injection run, and what each aggregator crash left in the
audit log.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fedmq.audit import Life

#: Aggregator crashes: two at a random moment, one at each failpoint (the gaps random kills rarely
#: hit).
AGGREGATOR_KILLS = ("timed", "timed", "before-checkpoint", "after-checkpoint", "after-publish")
OTHER_FAULTS = ("restart-broker", "kill-worker")


@dataclass(frozen=True)
class Fault:
    """One fault; a timed one fires once the run has made ``gap`` more versions since the previous
    fault.
    """

    kind: str
    gap: int = 0
    delay: float = 0.0
    failpoint: str | None = None
    worker: str | None = None

    @property
    def kills_aggregator(self) -> bool:
        return self.kind in AGGREGATOR_KILLS

    def describe(self) -> str:
        if self.failpoint:
            return f"the aggregator SIGKILLs itself at failpoint {self.failpoint}"
        if self.kind == "timed":
            return (
                f"SIGKILL the aggregator {self.delay * 1000:.0f} ms after {self.gap} more versions"
            )
        if self.kind == "restart-broker":
            return f"restart RabbitMQ after {self.gap} more versions"
        return f"SIGKILL worker {self.worker} in the middle of a fit after {self.gap} more versions"


def make_plan(
    seed: int, workers: list[str], *, min_gap: int = 20, max_gap: int = 60
) -> list[Fault]:
    """Five aggregator kills in random order, with a broker restart and a worker kill among them.

    The aggregator is started armed with the failpoint of the kill that comes
    next, so the other faults are placed only while an unarmed aggregator runs
    (before a timed kill): the failpoints then fire in plan order.
    """
    rng = random.Random(seed)
    kinds = list(AGGREGATOR_KILLS)
    rng.shuffle(kinds)
    for other in OTHER_FAULTS:
        kinds.insert(rng.choice([i for i, kind in enumerate(kinds) if kind == "timed"]), other)
    plan = []
    for kind in kinds:
        if kind == "timed":
            plan.append(Fault(kind, rng.randint(min_gap, max_gap), delay=rng.uniform(0.0, 0.25)))
        elif kind in OTHER_FAULTS:
            victim = rng.choice(workers) if kind == "kill-worker" else None
            plan.append(Fault(kind, rng.randint(min_gap, max_gap), worker=victim))
        else:
            plan.append(Fault(kind, failpoint=f"{kind}:{rng.randint(min_gap // 4, max_gap // 4)}"))
    return plan


def next_failpoint(plan: list[Fault], done: int) -> str | None:
    """The failpoint to arm a new aggregator with: the next aggregator kill's, if it is one."""
    upcoming = [fault for fault in plan[done:] if fault.kills_aggregator]
    return upcoming[0].failpoint if upcoming else None


def crash_effect(crashed: Life, restarted: Life) -> str:
    """Where a crash landed, judged from the audit: which durable step it cut off."""
    if crashed.void:
        return (
            f"between audit and checkpoint ({crashed.void} applications voided, re-applied later)"
        )
    if restarted.duplicates:
        duplicates = f"{restarted.duplicates} redeliveries recognised as duplicates"
        return f"after the checkpoint, before the ack ({duplicates})"
    return "between batches (nothing in flight)"


def published_before_crash(
    crashed: Sequence[Mapping[str, Any]], restarted: Sequence[Mapping[str, Any]]
) -> bool:
    """Did the crashed life publish the version its successor resumed at (a crash after publish)?"""
    resumed = restarted[0]["version"]
    return any(e["event"] == "published" and e["version"] == resumed for e in crashed)
