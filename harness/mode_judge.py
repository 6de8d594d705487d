"""Judge a finished fault-injection run twice: by its audit, and independently of it.

``verdict`` gathers the evidence once (the workers' event files, the final
checkpoint, the queues peeked on the broker, the witness's versions) and
applies ``fedmq.audit.check_run`` and ``harness.delivery.delivery_problems``;
with DP also the budget and the noise draws. Used by the per-mode fault test
and by ``bench/fault_soak.py``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from aggregator.shell.checkpoint import load_checkpoint
from broker.settings import BrokerSettings
from fedmq.audit import AuditReport, check_run, confirmed_ids
from fedmq.commands.audit import gather_evidence, queue_contents, worker_event_files
from harness.delivery import DeliveryEvidence, delivery_problems
from harness.procs import Federation
from runtime.eventlog import read_events


@dataclass(frozen=True)
class Verdict:
    audit: AuditReport
    independent: list[str]
    privacy: list[str]
    witnessed_versions: int

    @property
    def lost(self) -> int:
        return self.audit.fates.get("lost", 0)

    @property
    def applied_twice(self) -> int:
        doubles = [p for p in self.audit.problems if " times" in p]
        return len(doubles) + sum(" applications of " in p for p in self.independent)

    @property
    def ok(self) -> bool:
        return self.audit.ok and not self.independent and not self.privacy


def verdict(
    fed: Federation, witnessed: list[tuple[int, str]], *, dp_budget: float | None = None
) -> Verdict:
    settings = BrokerSettings(amqp_url=fed.amqp_url, namespace=fed.namespace, connect_attempts=3)
    queues = queue_contents(settings)
    events = worker_event_files(fed.run_dir, None)
    report = check_run(gather_evidence(fed.run_dir, event_files=events, queues=queues))
    independent = independent_problems(fed, witnessed, queues)
    private = privacy_problems(fed, dp_budget) if dp_budget is not None else []
    return Verdict(report, independent, private, len({v for v, _ in witnessed}))


def independent_problems(
    fed: Federation, witnessed: list[tuple[int, str]], queues: tuple[list[str], dict[str, str]]
) -> list[str]:
    """``harness.delivery`` on this run, and the audit's digests against the witnessed ones."""
    loaded = load_checkpoint(fed.run_dir / "state")
    if loaded is None:
        return ["no final checkpoint"]
    state, audit = loaded[0], fed.audit()
    confirmed = [
        u
        for path in worker_event_files(fed.run_dir, None)
        for u in confirmed_ids(read_events(path))
    ]
    too_stale = [  # the rejections that are only audited (LATE_REJECTIONS): too stale, or after
        str(e["message_id"])  # the end of the run (acknowledged by the end-of-run drain)
        for e in audit
        if e["event"] == "rejected" and e["reason"] in ("too-stale", "after-final")
    ]
    evidence = DeliveryEvidence(
        confirmed=confirmed,
        witnessed=witnessed,
        applied_ids=state.applied.ids(),
        applied_count=state.counters.applied,
        window_capacity=state.applied.capacity,
        final_version=state.version,
        queued=queues[0],
        dead=list(queues[1]),
        too_stale=too_stale,
    )
    said = {e["version"]: e.get("digest") for e in audit if e["event"] == "published"}
    mismatched = [
        f"version {v}: the audit's digest is not the one witnessed"
        for v, d in witnessed
        if said.get(v) != d
    ]
    return delivery_problems(evidence) + mismatched


def privacy_problems(fed: Federation, budget: float) -> list[str]:
    """The budget held across the crashes, and no noise draw served two versions."""
    loaded = load_checkpoint(fed.run_dir / "state")
    if loaded is None:
        return ["no final checkpoint"]
    spent = float(loaded[1]["dp"]["epsilon_spent"])
    problems = [] if spent <= budget else [f"epsilon {spent} exceeds the budget {budget}"]
    versions_by_draw: dict[str, set[int]] = defaultdict(set)
    for e in fed.audit():
        if e["event"] == "published" and e.get("noise"):
            versions_by_draw[str(e["noise"])].add(int(e["version"]))
    problems += [
        f"one noise draw for versions {sorted(v)}" for v in versions_by_draw.values() if len(v) > 1
    ]
    if not versions_by_draw:
        problems.append("no release recorded its noise draw")
    return problems
