"""Nothing lost, nothing applied twice: judged from the workers' and the broker's side.

``fedmq.audit`` reads the aggregator's own audit log. This check does not
trust it: what the workers saw confirmed comes from their event files, the
versions from a witness on the models exchange (``harness.witness``), and
what was applied from the final checkpoint (its window of applied ids and
its count of applications). The audit log is consulted for one thing only,
the rejections that by design leave no other trace: ``too-stale`` and
``after-final`` (in flight when the run ended).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryEvidence:
    confirmed: Collection[str]
    witnessed: Sequence[tuple[int, str]]
    applied_ids: Collection[str]
    applied_count: int
    window_capacity: int
    final_version: int
    queued: Collection[str] = ()
    dead: Collection[str] = ()
    too_stale: Collection[str] = ()


def version_problems(witnessed: Sequence[tuple[int, str]], final_version: int) -> list[str]:
    """One set of weights per version number; versions never go back; none beyond the final."""
    digests: dict[int, set[str]] = defaultdict(set)
    for version, weights in witnessed:
        digests[version].add(weights)
    problems = [
        f"version {v} reached the workers with {len(d)} different weights"
        for v, d in sorted(digests.items())
        if len(d) > 1
    ]
    problems += [
        f"version {later} was broadcast after version {earlier}"
        for (earlier, _), (later, _) in zip(witnessed, witnessed[1:], strict=False)
        if later < earlier
    ]
    if witnessed and max(v for v, _ in witnessed) > final_version:
        problems.append(f"a version above the final state's {final_version} was broadcast")
    return problems


def delivery_problems(evidence: DeliveryEvidence) -> list[str]:
    """Every confirmed update applied once (or rejected, or waiting); every version one model."""
    problems = version_problems(evidence.witnessed, evidence.final_version)
    applied = set(evidence.applied_ids)
    if evidence.applied_count > evidence.window_capacity:
        problems.append("more applications than the window holds: double applications hidden")
    elif evidence.applied_count != len(applied):
        problems.append(f"{evidence.applied_count} applications of {len(applied)} distinct updates")
    accounted = applied | set(evidence.queued) | set(evidence.dead) | set(evidence.too_stale)
    problems += [
        f"update {u} was confirmed to its worker but is neither applied, dead-lettered, queued "
        f"nor rejected as too stale or after the end"
        for u in sorted(set(evidence.confirmed) - accounted)
    ]
    return problems
