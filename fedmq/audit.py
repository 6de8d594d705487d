"""Was anything lost or applied twice? Pure checks over a run's logs.

The aggregator's audit log writes the ``applied`` lines of a commit *before*
the checkpoint of that commit (a synchronous round's close writes a
``round`` line the same way), and a ``start`` line with the checkpoint's
commit each time it starts. An applied line whose commit is above the next
start's commit (or above the final checkpoint's) was undone by a crash: the
state that contained it never became durable, its update was redelivered
and applied again. Such a line is *void*; every other applied line counts.

From that and the workers' ``confirmed`` events, ``check_run`` verifies that
every update a worker saw confirmed was applied exactly once, or rejected
with a recorded reason, or still waits in the results queue; that no update
was applied twice; and that no version was published with two digests.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Event = Mapping[str, Any]
#: Lines written before the checkpoint of the commit they name: updates applied, rounds closed.
COMMIT_EVENTS = frozenset({"applied", "round"})


@dataclass(frozen=True)
class Life:
    """One run of the aggregator process: a ``start`` line and what followed it."""

    start_commit: int
    start_version: int
    applied: int = 0
    void: int = 0
    duplicates: int = 0
    rejected: int = 0
    published: int = 0


@dataclass(frozen=True)
class RunEvidence:
    """What a run left behind; ``queued`` and ``dead`` come from peeking at the broker."""

    audit: Sequence[Event]
    confirmed: Collection[str]
    queued: Collection[str] = ()
    dead: Mapping[str, str] = field(default_factory=dict)
    final_commit: int | None = None
    final_applied: int | None = None


@dataclass(frozen=True)
class AuditReport:
    lives: list[Life]
    applied: int
    void: int
    confirmed: int
    fates: Counter[str]
    rejections: Counter[str]
    versions: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """A human-readable account, one fact per line."""
        out = [f"aggregator lives: {len(self.lives)} ({max(len(self.lives) - 1, 0)} restarts)"]
        for i, life in enumerate(self.lives):
            out.append(
                f"life {i}: from commit {life.start_commit} (v{life.start_version}): applied "
                f"{life.applied}"
                f"(void {life.void}), duplicates {life.duplicates}, rejected {life.rejected}, "
                f"published {life.published}"
            )
        out.append(f"applied: {self.applied} updates ({self.void} void lines from crashed commits)")
        fates = ", ".join(f"{name} {count}" for name, count in sorted(self.fates.items())) or "none"
        out.append(f"confirmed by workers: {self.confirmed} -> {fates}")
        if self.rejections:
            out.append(
                "rejections: " + ", ".join(f"{r} {n}" for r, n in sorted(self.rejections.items()))
            )
        out.append(f"versions published: {self.versions}")
        out.append(
            "OK: nothing lost, nothing applied twice"
            if self.ok
            else f"{len(self.problems)} problem(s):"
        )
        out.extend(f"  {p}" for p in self.problems)
        return out


def split_lives(audit: Iterable[Event]) -> list[list[Event]]:
    """The audit log cut at each ``start`` line (lines before the first start form a life of their
    own).
    """
    lives: list[list[Event]] = []
    for event in audit:
        if event.get("event") == "start" or not lives:
            lives.append([])
        lives[-1].append(event)
    return lives


def _start_commit(life: Sequence[Event]) -> int:
    first = life[0]
    return int(first.get("commit", 0)) if first.get("event") == "start" else 0


def effective_applications(
    audit: Sequence[Event], final_commit: int | None
) -> tuple[list[Event], list[Life], list[str]]:
    """The applied lines that count, a summary per life, and inconsistencies found on the way."""
    lives = split_lives(audit)
    durable = [_start_commit(life) for life in lives[1:]] + [final_commit]
    counted: list[Event] = []
    summaries: list[Life] = []
    problems: list[str] = []
    for index, (life, limit) in enumerate(zip(lives, durable, strict=False)):
        start = _start_commit(life)
        applied = [e for e in life if e.get("event") == "applied"]
        commits = [int(e["commit"]) for e in life if e.get("event") in COMMIT_EVENTS]
        last = max(commits, default=start)
        if limit is not None and not start <= limit <= last:
            problems.append(
                f"life {index} ran commits {start}..{last} but the next durable commit is {limit}"
            )
        kept = [e for e in applied if limit is None or int(e["commit"]) <= limit]
        counted.extend(kept)
        kinds = Counter(str(e.get("event")) for e in life)
        summaries.append(
            Life(
                start_commit=start,
                start_version=int(life[0].get("version", 0)),
                applied=len(applied),
                void=len(applied) - len(kept),
                duplicates=kinds["duplicate"],
                rejected=kinds["rejected"],
                published=kinds["published"],
            )
        )
    return counted, summaries, problems


def digest_conflicts(audit: Iterable[Event]) -> tuple[int, list[str]]:
    """How many versions were published, and any version published with two different digests."""
    digests: dict[int, set[str]] = defaultdict(set)
    for event in audit:
        if event.get("event") == "published":
            seen = digests[int(event["version"])]
            if event.get("digest"):
                seen.add(str(event["digest"]))
    problems = [
        f"version {v} was published with {len(d)} different digests: {sorted(d)}"
        for v, d in sorted(digests.items())
        if len(d) > 1
    ]
    return len(digests), problems


def fate_of(
    update_id: str, times_applied: int, rejected: Mapping[str, str], evidence: RunEvidence
) -> str:
    """What became of one confirmed update: applied, rejected, dead-lettered, queued or lost."""
    if times_applied:
        return "applied"
    if update_id in rejected:
        return "rejected"
    if update_id in evidence.dead:
        return "dead-lettered"
    if update_id in evidence.queued:
        return "queued"
    return "lost"


def check_run(evidence: RunEvidence) -> AuditReport:
    """Every confirmed update accounted for exactly once; every version one set of weights."""
    counted, lives, problems = effective_applications(evidence.audit, evidence.final_commit)
    times = Counter(str(e["update_id"]) for e in counted)
    rejected = {
        str(e.get("message_id")): str(e.get("reason"))
        for e in evidence.audit
        if e.get("event") == "rejected"
    }
    problems += application_problems(times, rejected)
    confirmed = set(evidence.confirmed)
    fates, lost = confirmed_fates(confirmed, times, rejected, evidence)
    problems += lost
    versions, conflicts = digest_conflicts(evidence.audit)
    problems += conflicts
    if evidence.final_applied is not None and evidence.final_applied != len(counted):
        problems.append(
            f"the checkpoint counts {evidence.final_applied} applied updates, the audit log "
            f"{len(counted)}"
        )
    return AuditReport(
        lives=lives,
        applied=len(counted),
        void=sum(life.void for life in lives),
        confirmed=len(confirmed),
        fates=fates,
        rejections=Counter({**evidence.dead, **rejected}.values()),
        versions=versions,
        problems=problems,
    )


def application_problems(times: Counter[str], rejected: dict[str, str]) -> list[str]:
    """Updates applied more than once, or applied and rejected."""
    problems = [f"update {u} was applied {n} times" for u, n in sorted(times.items()) if n > 1]
    problems += [
        f"update {u} was applied and also rejected ({rejected[u]})"
        for u in sorted(times)
        if u in rejected
    ]
    return problems


def confirmed_fates(
    confirmed: set[str], times: Counter[str], rejected: dict[str, str], evidence: RunEvidence
) -> tuple[Counter[str], list[str]]:
    """What became of each confirmed update, and a problem for each one lost."""
    fates: Counter[str] = Counter()
    problems = []
    for update_id in sorted(confirmed):
        fate = fate_of(update_id, times[update_id], rejected, evidence)
        fates[fate] += 1
        if fate == "lost":
            problems.append(
                f"update {update_id} was confirmed to its worker but never applied, rejected or "
                f"queued"
            )
    return fates, problems


def confirmed_ids(worker_events: Iterable[Event]) -> list[str]:
    """The update ids a worker's event log says the broker confirmed."""
    return [str(e["update_id"]) for e in worker_events if e.get("event") == "confirmed"]
