"""The protocol rules a worker is checked against, judged from what was observed (pure).

``observe`` (the shell) records every model request and update the worker published
(tapped from the inbox exchange, properties and body), whether it consumed its model
queue, the aggregator's summary and when the worker process exited; ``judge`` turns
that into one verdict per rule of docs/protocol.md it can check from outside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aggregator.core.tracker import RunSummary
from broker.delivery import Properties
from schemas.codec import CONTENT_TYPE
from schemas.messages import ClientUpdate, Message, ModelRequest

#: How long after the final model a worker may take to exit.
EXIT_GRACE = 30.0


@dataclass(frozen=True)
class Seen:
    """One message the worker published: its properties, and the decoded body or the error."""

    properties: Properties
    message: Message | None
    error: str = ""


@dataclass
class Observed:
    """Everything one conformance run saw of the worker."""

    worker_id: str
    amqp_user: str
    requests: list[Seen] = field(default_factory=list)
    updates: list[Seen] = field(default_factory=list)
    attached: bool = False
    summary: RunSummary | None = None
    exit_code: int | None = None
    #: Seconds from the final model to the worker's exit; None if it had to be stopped.
    exit_after_final: float | None = None
    #: True when the worker process ended before the final model was published.
    exited_before_end: bool | None = None


@dataclass(frozen=True)
class Verdict:
    rule: str
    kept: bool
    detail: str


def _attaches(o: Observed) -> Verdict:
    return Verdict(
        "consumes its own model queue (section 2, step 2)",
        o.attached,
        f"a consumer on <ns>.models.{o.worker_id}" if o.attached else "never seen consuming it",
    )


def _requests(o: Observed) -> Verdict:
    bad = [s.error or "not a ModelRequest" for s in o.requests if not _valid_request(s, o)]
    kept = bool(o.requests) and not bad
    detail = f"{len(o.requests)} request(s)" + (f"; invalid: {bad[0]}" if bad else "")
    return Verdict("asks for the current model (step 3; sections 3, 5)", kept, detail)


def _valid_request(seen: Seen, o: Observed) -> bool:
    return (
        isinstance(seen.message, ModelRequest)
        and seen.message.worker_id == o.worker_id
        and seen.properties.content_type == CONTENT_TYPE
    )


def _update_properties(o: Observed) -> Verdict:
    faults = sorted({f for s in o.updates for f in property_faults(s, o.amqp_user)})
    kept = bool(o.updates) and not faults
    detail = f"{len(o.updates)} update(s)" + (f"; {', '.join(faults)}" if faults else "")
    return Verdict("update properties: msgpack, persistent, user_id (section 3)", kept, detail)


def property_faults(seen: Seen, amqp_user: str) -> list[str]:
    """What an update's properties break of section 3 (checked or strongly advised)."""
    props, faults = seen.properties, []
    if props.content_type != CONTENT_TYPE:
        faults.append(f"content_type {props.content_type!r}")
    if not props.persistent:
        faults.append("transient (delivery_mode 1)")
    if props.user_id != amqp_user:
        faults.append(f"user_id {props.user_id!r} (connected as {amqp_user!r})")
    return faults


def _update_bodies(o: Observed) -> Verdict:
    errors = [s.error for s in o.updates if not isinstance(s.message, ClientUpdate)]
    kept = bool(o.updates) and not errors
    detail = f"{len(o.updates) - len(errors)}/{len(o.updates)} decode" + (
        f"; first error: {errors[0]}" if errors else ""
    )
    return Verdict("update bodies decode as ClientUpdate (sections 4, 5)", kept, detail)


def _applied(o: Observed) -> Verdict:
    s = o.summary
    if s is None:
        return Verdict("the aggregator applied its updates (section 6)", False, "no summary")
    # after-final: in flight when the run ended (section 7), drained after the final version; the
    # aggregator's doing, not the worker's.
    late = s.rejected.get("after-final", 0)
    refused = {k: v for k, v in s.rejected.items() if k != "after-final"}
    rejected = sum(refused.values())
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(refused.items()))
    detail = f"{s.applied} applied, {rejected} rejected" + (f" ({reasons})" if reasons else "")
    detail += f", {late} after the end" if late else ""
    return Verdict(
        "the aggregator applied its updates (section 6)", s.applied > 0 and not rejected, detail
    )


def _unique_ids(o: Observed) -> Verdict:
    ids = [s.message.update_id for s in o.updates if isinstance(s.message, ClientUpdate)]
    matches = all(
        s.properties.message_id == s.message.update_id
        for s in o.updates
        if isinstance(s.message, ClientUpdate)
    )
    kept = bool(ids) and len(set(ids)) == len(ids) and matches
    detail = f"{len(set(ids))} distinct of {len(ids)}" + ("" if matches else "; message_id differs")
    return Verdict("a new update_id per update, also its message_id (sections 3, 5)", kept, detail)


def _newest_version(o: Observed) -> Verdict:
    bases = [s.message.base_version for s in o.updates if isinstance(s.message, ClientUpdate)]
    versions = o.summary.version if o.summary is not None else 0
    forward = all(a <= b for a, b in zip(bases, bases[1:], strict=False))
    # From outside, "the newest it has" shows as: never an older base than before, and moving
    # on from the first model (how often depends on how fast it trains against the aggregator).
    kept = bool(bases) and forward and (len(set(bases)) >= 2 or versions < 2)
    detail = (
        f"based on {len(set(bases))} of {versions} versions"
        + ("" if forward else "; a base version went backwards")
        + (f"; staleness mean {o.summary.staleness_mean}" if o.summary else "")
    )
    return Verdict("trains on the newest version it has (step 7)", kept, detail)


def _stops(o: Observed) -> Verdict:
    after = o.exit_after_final
    kept = after is not None and after <= EXIT_GRACE and o.exit_code == 0
    kept = kept and not o.exited_before_end
    if o.exited_before_end:
        detail = f"exited with code {o.exit_code} before the end of the run"
    elif after is None:
        detail = f"still running {EXIT_GRACE:.0f} s after the final model: stopped"
    else:
        detail = f"exited with code {o.exit_code}, {after:.1f} s after the final model"
    return Verdict("stops after the final model (section 7)", kept, detail)


RULES: tuple[Callable[[Observed], Verdict], ...] = (
    _attaches,
    _requests,
    _update_properties,
    _update_bodies,
    _applied,
    _unique_ids,
    _newest_version,
    _stops,
)


def judge(observed: Observed) -> list[Verdict]:
    """One verdict per rule, in the order of docs/protocol.md."""
    return [rule(observed) for rule in RULES]
