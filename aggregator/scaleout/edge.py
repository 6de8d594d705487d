"""An edge aggregator: holds the updates the hash exchange routes to it, offers their ids to the
root, answers each step plan with the exact partial sum of the ids it is given, and acks an
update only once the root says a committed version contains it.

An update's staleness is counted against the version its step is applied to
(plan version - 1), so an edge that answers the same plan twice (after a crash,
from the redelivered updates) sends the same bits. Updates must be deltas,
uncompressed, with the initial model's arrays; anything else is rejected
(``basic.nack`` without requeue).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

from aggregator.core.scaleout import Edge, StepPlan
from aggregator.core.strategy import Contribution
from aggregator.core.validation import Rejected, validate_update
from aggregator.scaleout.settings import ScaleoutSettings
from broker.connection import AmqpSession
from broker.declarations import QueueLimits
from broker.delivery import Delivery, Properties
from broker.edges import EdgeNames, attach_plans, declare_edges
from broker.errors import BrokerError
from broker.reconnect import serve_attached
from schemas.codec import CONTENT_TYPE, Limits, decode, encode
from schemas.errors import DecodeError
from schemas.messages import ClientUpdate
from schemas.scaleout import (
    MAX_OFFER,
    EdgeOffer,
    EdgePartial,
    StepPlanMessage,
    StepsApplied,
)
from training.weights import Weights

log = logging.getLogger("fedmq.edge")

#: Seconds between offers of what it holds (an offer is also sent as soon as something arrives).
OFFER_INTERVAL = 0.5
POLL_SECONDS = 0.05


@dataclass
class Held:
    """An update held until a committed version contains it; every delivery that carried it."""

    update: ClientUpdate
    tags: list[int] = field(default_factory=list)


def edge_name(index: int) -> str:
    return f"edge-{index}"


def to_plan(message: StepPlanMessage) -> StepPlan:
    return StepPlan(
        message.version, tuple((s.edge, frozenset(s.update_ids)) for s in message.assigned)
    )


def contribution(update: ClientUpdate, plan_version: int) -> Contribution:
    """The update as applied to version ``plan_version - 1`` (its staleness counted there)."""
    return Contribution(
        update_id=update.update_id,
        worker_id=update.worker_id,
        staleness=max(0, plan_version - 1 - update.base_version),
        num_examples=update.num_examples,
        arrays=update.arrays,
    )


def control_properties() -> Properties:
    return Properties(content_type=CONTENT_TYPE, persistent=False)


class EdgeService:
    """One edge process (``index`` of ``settings.edges``) until ``stop`` or the final version."""

    def __init__(self, settings: ScaleoutSettings, index: int, stop: threading.Event) -> None:
        self.settings, self.index, self.stop = settings, index, stop
        self.name = edge_name(index)
        self.names = EdgeNames(settings.broker.namespace)
        self.model: Weights = settings.initial_model()
        self.session = AmqpSession(settings.broker, name=f"fedmq-{self.name}")
        self.limits = Limits(max_message_bytes=settings.broker.max_message_bytes)
        self.held: dict[str, Held] = {}
        self.control: list[StepPlanMessage | StepsApplied] = []
        self.answered: tuple[int, frozenset[str], bytes] | None = None
        self.fresh, self.last_offer, self.finished = False, 0.0, False

    def run(self) -> None:
        try:
            serve_attached(
                self.session,
                self._attach,
                self._serve,
                stop=self.stop,
                backoff_max=self.settings.broker.connect_backoff_max,
                on_outage=self._on_outage,
            )
        finally:
            self.session.close()

    def _on_outage(self, exc: BrokerError, delay: float) -> None:
        self.held.clear()  # their delivery tags died with the channel; the broker redelivers them
        self.control.clear()
        log.warning("%s lost the broker (%s); reconnecting in %.1fs", self.name, exc, delay)

    def _attach(self) -> None:
        self.session.open()
        limits = QueueLimits(quorum_group_size=self.settings.broker.quorum_group_size)
        declare_edges(self.session, self.names, self.settings.edges, limits)
        self.session.set_prefetch(self.settings.prefetch)
        plans = attach_plans(self.session, self.names, f"{self.name}-{secrets.token_hex(4)}")
        self.session.consume(plans, self._on_control)
        self.session.consume(self.names.edge_queue(self.index), self._on_update)
        log.info("%s attached to %s", self.name, self.names.edge_queue(self.index))

    def _serve(self) -> bool:
        while not self.stop.is_set() and not self.finished:
            self.session.process_events(POLL_SECONDS)
            while self.control and not self.finished:
                self._handle(self.control.pop(0))
            if self.fresh or time.monotonic() - self.last_offer > OFFER_INTERVAL:
                self._offer()
        return self.finished

    # -- deliveries (inside process_events: only bookkeeping, no publishing) ----------------
    def _on_update(self, delivery: Delivery) -> None:
        try:
            update = decode(
                delivery.body,
                ClientUpdate,
                content_type=delivery.properties.content_type,
                limits=self.limits,
            )
        except DecodeError as exc:
            log.warning("%s rejects an undecodable update: %s", self.name, exc)
            self.session.nack(delivery.delivery_tag, requeue=False)
            return
        verdict = self._verdict(update)
        if isinstance(verdict, Rejected):
            log.warning("%s rejects %s: %s", self.name, update.update_id, verdict.detail)
            self.session.nack(delivery.delivery_tag, requeue=False)
            return
        held = self.held.setdefault(update.update_id, Held(update))
        held.tags.append(delivery.delivery_tag)
        self.fresh = True

    def _verdict(self, update: ClientUpdate) -> Rejected | None:
        if update.compression != "none":
            return Rejected(
                "compressed", f"edges take uncompressed updates, not {update.compression}"
            )
        verdict = validate_update(
            update,
            model=self.model,
            version=update.base_version,
            expected_kind="delta",
            max_staleness=None,
        )
        return verdict if isinstance(verdict, Rejected) else None

    def _on_control(self, delivery: Delivery) -> None:
        self.session.ack(delivery.delivery_tag)
        try:
            message = decode(delivery.body, content_type=delivery.properties.content_type)
        except DecodeError as exc:
            log.warning("%s ignores an undecodable control message: %s", self.name, exc)
            return
        if isinstance(message, StepPlanMessage | StepsApplied):
            self.control.append(message)

    # -- what it does between deliveries --------------------------------------------------
    def _handle(self, message: StepPlanMessage | StepsApplied) -> None:
        if isinstance(message, StepsApplied):
            self._applied(message)
        else:
            self._answer(to_plan(message))

    def _applied(self, message: StepsApplied) -> None:
        for uid in message.update_ids:
            held = self.held.pop(uid, None)
            for tag in held.tags if held else []:
                self.session.ack(tag)
        if message.final:
            log.info("%s: the run ended at version %d", self.name, message.version)
            self.finished = True

    def _answer(self, plan: StepPlan) -> None:
        mine = plan.for_edge(self.name)
        if not mine or not mine <= self.held.keys():
            return  # not ours, or not (yet) redelivered to us: the root repeats the plan
        if self.answered is None or self.answered[:2] != (plan.version, mine):
            core = Edge(self.name)
            for uid in mine:
                core.receive(contribution(self.held[uid].update, plan.version))
            partial = core.answer(plan)
            body = encode(
                EdgePartial(
                    edge=self.name,
                    version=plan.version,
                    update_ids=tuple(sorted(partial.update_ids)),
                    mass=partial.mass,
                    arrays=dict(partial.sums),
                )
            )
            self.answered = (plan.version, mine, body)
        self.session.publish("", self.names.root_queue, self.answered[2], control_properties())

    def _offer(self) -> None:
        self.fresh, self.last_offer = False, time.monotonic()
        if not self.held:
            return
        ids = tuple(list(self.held)[:MAX_OFFER])
        offer = EdgeOffer(edge=self.name, update_ids=ids)
        self.session.publish("", self.names.root_queue, encode(offer), control_properties())
