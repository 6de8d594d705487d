"""The root aggregator: plans each step from the edges' offers, combines their exact partial sums,
steps the model, commits (checkpoint), and tells the edges which ids are applied.

Exactly once: a step is committed by the checkpoint (model and step log in one
atomic file) before any edge hears of it, and an edge acks an update only once
told; a root that crashes before the commit plans that version again from the
edges' fresh offers, one that crashes after it tells the edges when they
offer the applied ids again. ``aggregator.core.scaleout.Root`` decides; this
moves its messages.
"""

from __future__ import annotations

import logging
import threading
import time

from aggregator.core.partial import Partial
from aggregator.core.scaleout import Root, StepPlan
from aggregator.scaleout.edge import control_properties, edge_name
from aggregator.scaleout.settings import RootSettings
from aggregator.scaleout.state import RootState, load, note_commit, save
from broker.connection import AmqpSession
from broker.declarations import QueueLimits
from broker.delivery import Delivery
from broker.edges import EdgeNames, declare_edges
from broker.errors import BrokerError
from broker.reconnect import serve_attached
from schemas.codec import Limits, decode, encode
from schemas.errors import DecodeError
from schemas.scaleout import (
    MAX_OFFER,
    EdgeOffer,
    EdgePartial,
    EdgeShare,
    StepPlanMessage,
    StepsApplied,
)

log = logging.getLogger("fedmq.root")

#: Seconds between repeats of a plan not yet fully answered (an edge may have restarted).
PLAN_REPEAT = 0.5
POLL_SECONDS = 0.02


def plan_message(plan: StepPlan) -> StepPlanMessage:
    return StepPlanMessage(
        version=plan.version,
        assigned=tuple(
            EdgeShare(edge=e, update_ids=tuple(sorted(ids))) for e, ids in plan.assigned
        ),
    )


def fits(partial: EdgePartial, state: RootState) -> bool:
    """The partial's arrays are the model's, shape for shape (a stranger's would break the step)."""
    model = state.model
    return partial.arrays.keys() <= model.keys() and all(
        a.shape == model[name].shape for name, a in partial.arrays.items()
    )


class RootService:
    """The root process, until ``max_versions`` (then True) or ``stop``."""

    def __init__(self, settings: RootSettings, stop: threading.Event) -> None:
        self.settings, self.stop = settings, stop
        common = settings.common
        self.names = EdgeNames(common.broker.namespace)
        self.edges = {edge_name(i) for i in range(common.edges)}
        self.state = load(settings.state_dir, common.initial_model())
        self.core = Root(
            version=self.state.version,
            buffer_size=settings.buffer_size,
            server_lr=settings.server_lr,
            applied=self.state.applied(),
        )
        self.session = AmqpSession(common.broker, name="fedmq-root")
        self.limits = Limits(max_message_bytes=common.broker.max_message_bytes)
        self.inbox: list[EdgeOffer | EdgePartial] = []
        self.stale: set[str] = set()  # offered ids already applied: tell the edges again
        self.planned: tuple[int, float] | None = None  # (version, when its plan was published)

    def run(self) -> bool:
        try:
            done = serve_attached(
                self.session,
                self._attach,
                self._serve,
                stop=self.stop,
                backoff_max=self.settings.common.broker.connect_backoff_max,
                on_outage=self._on_outage,
            )
        finally:
            self.session.close()
        return bool(done)

    def _on_outage(self, exc: BrokerError, delay: float) -> None:
        self.inbox.clear()
        self.planned = None
        log.warning("root lost the broker (%s); reconnecting in %.1fs", exc, delay)

    def _attach(self) -> None:
        self.session.open()
        limits = QueueLimits(quorum_group_size=self.settings.common.broker.quorum_group_size)
        declare_edges(self.session, self.names, self.settings.common.edges, limits)
        self.session.set_prefetch(64)
        self.session.consume(self.names.root_queue, self._on_message)
        log.info("root attached at version %d", self.core.version)

    def _serve(self) -> bool:
        while not self.stop.is_set():
            if self.core.version >= self.settings.max_versions:
                self._announce(self.state.steps[-1] if self.state.steps else [], final=True)
                return True
            self.session.process_events(POLL_SECONDS)
            for message in self._drain():
                self._handle(message)
            if self.stale:
                self._announce(sorted(self.stale))
                self.stale.clear()
            self._plan()
            if self.core.ready():
                self._commit()
        return False

    def _drain(self) -> list[EdgeOffer | EdgePartial]:
        got, self.inbox = self.inbox, []
        return got

    def _on_message(self, delivery: Delivery) -> None:
        self.session.ack(delivery.delivery_tag)  # offers repeat and plans are asked again
        try:
            message = decode(
                delivery.body, content_type=delivery.properties.content_type, limits=self.limits
            )
        except DecodeError as exc:
            log.warning("root ignores an undecodable message: %s", exc)
            return
        if isinstance(message, EdgeOffer | EdgePartial) and message.edge in self.edges:
            self.inbox.append(message)

    def _handle(self, message: EdgeOffer | EdgePartial) -> None:
        if isinstance(message, EdgeOffer):
            self.core.offered(message.edge, message.update_ids)
            self.stale.update(uid for uid in message.update_ids if uid in self.core.applied)
            return
        plan = self.core.plan
        if plan is None or message.version != plan.version or not fits(message, self.state):
            return  # an answer to an earlier plan (before a crash or an outage)
        partial = Partial(dict(message.arrays), message.mass, frozenset(message.update_ids))
        try:
            self.core.answered(message.edge, partial)
        except ValueError as exc:
            log.warning("root ignores a partial from %s: %s", message.edge, exc)

    def _plan(self) -> None:
        plan = self.core.next_plan()
        if plan is None:
            return
        now = time.monotonic()
        if (
            self.planned is None
            or self.planned[0] != plan.version
            or now > self.planned[1] + PLAN_REPEAT
        ):
            self.session.publish(
                self.names.plans_exchange,
                "",
                encode(plan_message(plan)),
                control_properties(),
                mandatory=False,
            )
            self.planned = (plan.version, now)

    def _commit(self) -> None:
        plan = self.core.step(self.state.model)
        ids = sorted(plan.update_ids)
        self.state.steps.append(ids)
        save(self.settings.state_dir, self.state)
        note_commit(self.settings.state_dir, plan.version, len(ids), len(plan.assigned))
        log.info("version %d: %d updates from %d edges", plan.version, len(ids), len(plan.assigned))
        self.planned = None
        self._announce(ids, final=self.core.version >= self.settings.max_versions)

    def _announce(self, ids: list[str], *, final: bool = False) -> None:
        """Tell the edges (not mandatory: with none listening, nobody is owed it)."""
        for start in range(0, max(len(ids), 1), MAX_OFFER):
            message = StepsApplied(
                version=self.core.version,
                update_ids=tuple(ids[start : start + MAX_OFFER]),
                final=final,
            )
            self.session.publish(
                self.names.plans_exchange,
                "",
                encode(message),
                control_properties(),
                mandatory=False,
            )
