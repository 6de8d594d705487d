"""Secure FedBuff's buffers over the broker: open, broadcast each stage, take uploads, close.

Per loop turn: take the protocol messages received (decode, check the
broker-validated sender, feed the state machine), persist once for the lot
and only then acknowledge them; open a buffer when none runs and enough
workers are active; close a stage when every live cohort member has
answered, or when it has run ``stage_timeout`` seconds (the silent ones are
dropouts). The keys stage is one broadcast (``secure-round``); every later
stage one message per cohort member with its own entries only; after a
restart the open stage is sent again (the state machine recomputes it
identically). A buffer's sum is committed as one new version.
"""

from __future__ import annotations

import logging

from aggregator.core.identity import check_sender
from aggregator.core.secure_fedbuff import SecureFedBuff, close_stage
from aggregator.core.strategy import Strategy
from aggregator.core.validation import Rejected
from aggregator.settings import AggregatorSettings
from aggregator.shell.rounds import RoundControl
from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.names import BROADCAST_KEY, Names, worker_key
from broker.properties import secure_round_properties
from runtime.eventlog import EventLog
from schemas.codec import Limits, decode, encode
from schemas.errors import DecodeError
from schemas.secure import RoundStage, SecureUpload
from secagg.errors import Accepted, Receipt
from secagg.errors import Rejected as ProtocolRejected
from secagg.ledger import BufferSum, Stage
from secagg.messages import AggregatorMessage
from secagg.wire import message_of, stage_messages

log = logging.getLogger("fedmq.aggregator")


class SecureRounds:
    """Drives ``SecureFedBuff`` on the aggregator's session; ``close`` stands in for rounds'."""

    def __init__(
        self,
        strategy: SecureFedBuff,
        rounds: RoundControl,
        session: AmqpSession,
        names: Names,
        *,
        audit: EventLog,
        limits: Limits,
        stage_timeout: float,
    ) -> None:
        self.strategy, self.session, self.names = strategy, session, names
        self.core, self.active, self.store = rounds.core, rounds.active, rounds.store
        self.publisher, self.tracker, self.clock = rounds.publisher, rounds.tracker, rounds.clock
        self.audit, self.limits, self.stage_timeout = audit, limits, stage_timeout
        self.inbox: list[Delivery] = []
        self._stage_started = self.clock.now()

    # -- deliveries ------------------------------------------------------------------------
    def receive(self, delivery: Delivery) -> None:
        self.inbox.append(delivery)

    def clear(self) -> None:
        """Forget deliveries whose channel died (the broker redelivers them)."""
        self.inbox.clear()

    def consume(self) -> None:
        """Start taking workers' protocol messages (on every new connection)."""
        self.session.consume(self.names.secure_queue, self.receive)

    def lowest_tag(self) -> int | None:
        """The oldest unsettled delivery (the intake's ``multiple`` ack must stop below it)."""
        return min((d.delivery_tag for d in self.inbox), default=None)

    # -- the loop turn ---------------------------------------------------------------------
    def close(self) -> bool:
        """One turn; True if a buffer's sum made a new version (persisted and published)."""
        if self.inbox:
            self._take_uploads()
        if self.core.state.finished:
            return False
        if self.strategy.is_closed():
            self._open()
            return False
        overdue = self.clock.now() - self._stage_started >= self.stage_timeout
        if self.strategy.stage_complete() or overdue:
            return self._close_stage()
        return False

    def resume(self) -> None:
        """After (re)connecting: broadcast the open buffer's current stage again."""
        server = self.strategy.server
        if server is not None and not self.strategy.is_closed():
            self._broadcast(server.outbox())
            self._stage_started = self.clock.now()

    def _take_uploads(self) -> None:
        batch, self.inbox = self.inbox, []
        receipts = [(d, self._receipt(d)) for d in batch]
        if any(isinstance(r, Accepted) for _, r in receipts):
            self.store.persist(self.core, self.clock.elapsed())  # before any ack: crash-safe
        for delivery, receipt in receipts:
            if isinstance(receipt, Rejected | ProtocolRejected):
                reason = receipt.reason if isinstance(receipt, Rejected) else receipt.reason.value
                self.publisher.dead_letter(
                    delivery, self.core.reject(Rejected(reason, receipt.detail))
                )
            self.session.ack(delivery.delivery_tag)

    def _receipt(self, delivery: Delivery) -> Receipt | Rejected:
        sender = delivery.properties.user_id
        refused = check_sender(self.core.identity, sender)  # before anything is decoded
        if refused is not None or sender is None:
            return refused or Rejected("no-user-id", "secure aggregation needs a validated sender")
        try:
            upload = decode(
                delivery.body,
                SecureUpload,
                content_type=delivery.properties.content_type,
                limits=self.limits,
            )
        except DecodeError as exc:
            return Rejected(exc.reason, exc.detail)
        self.active.seen(sender, self.clock.now())  # an admitted, well-formed upload: it is alive
        if self.strategy.server is None or upload.buffer_id != self.strategy.server.setup.buffer_id:
            return Rejected("wrong-buffer", f"{upload.buffer_id} is not the open buffer")
        return self.strategy.receive(sender, message_of(upload))

    # -- buffers and stages ----------------------------------------------------------------
    def _open(self) -> None:
        now = self.clock.now()
        state = self.core.state
        setup = self.strategy.open_buffer(
            run_id=state.run_id,
            version=state.version,
            candidates=self.active.active(now),
            model=state.weights,
        )
        if setup is None:
            return
        self.store.persist(self.core, self.clock.elapsed())
        self.audit.write(
            "secure-buffer-open",
            buffer_id=setup.buffer_id,
            version=state.version,
            cohort=list(setup.cohort),
            degree=setup.degree,
            threshold=setup.threshold,
            noise_multiplier=setup.noise_multiplier,
        )
        self._broadcast(())
        self._stage_started = now

    def _close_stage(self) -> bool:
        server = self.strategy.server
        assert server is not None  # a buffer is open
        buffer_id, stage_before = server.setup.buffer_id, server.stage
        for silent in server.waiting_for():  # closed by the deadline: invite them no more
            self.active.forget(silent)
        result = close_stage(self.core.state, self.strategy)
        if isinstance(result, tuple):
            self.store.persist(self.core, self.clock.elapsed())
            self._broadcast(result)
            self._stage_started = self.clock.now()
            return False
        if isinstance(result, BufferSum):
            # Audited before it is persisted, as applied updates are: a line whose commit the
            # checkpoint does not reach is void after a restart, which then sums the buffer again.
            commit = self.core.begin_commit()
            self.tracker.versions(1, self.clock.now())
            self.audit.write(
                "secure-buffer-sum",
                buffer_id=buffer_id,
                contributors=list(result.contributors),
                corrupt_shares=[list(p) for p in result.corrupt_shares],
                version=self.core.state.version,
                commit=commit,
            )
            self.store.persist(self.core, self.clock.elapsed())
            self.publisher.publish_version(final=False)
            return True
        self.store.persist(self.core, self.clock.elapsed())
        self.audit.write(
            "secure-buffer-aborted",
            buffer_id=buffer_id,
            stage=stage_before.value,
            reason=result.reason.value,
            detail=result.detail,
        )
        log.warning("secure buffer %s aborted: %s", buffer_id, result.reason.value)
        return False

    def _broadcast(self, messages: tuple[AggregatorMessage, ...]) -> None:
        server = self.strategy.server
        assert server is not None
        stage: RoundStage = _wire_stage(server.stage)
        props = secure_round_properties(server.setup.buffer_id, stage, self.session.username)
        for recipient, message in stage_messages(
            server.setup,
            run_id=self.core.state.run_id,
            version=self.strategy.round_version,
            stage=stage,
            messages=messages,
        ):
            key = BROADCAST_KEY if recipient is None else worker_key(recipient)
            self.session.publish(
                self.names.models_exchange, key, encode(message), props, mandatory=False
            )


def _wire_stage(stage: Stage) -> RoundStage:
    if stage is Stage.SHARES:
        return "shares"
    if stage is Stage.MASKED:
        return "masked"
    if stage is Stage.UNMASK:
        return "unmask"
    return "keys"


class NoSecureRounds:
    """Stands in for ``SecureRounds`` when the strategy is not secure FedBuff: does nothing."""

    def clear(self) -> None:
        pass

    def consume(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def lowest_tag(self) -> int | None:
        return None


def secure_rounds_for(
    strategy: Strategy,
    rounds: RoundControl,
    session: AmqpSession,
    audit: EventLog,
    settings: AggregatorSettings,
) -> SecureRounds | NoSecureRounds:
    """The secure rounds driver if ``strategy`` is secure FedBuff, else one that does nothing."""
    if not isinstance(strategy, SecureFedBuff):
        return NoSecureRounds()
    return SecureRounds(
        strategy,
        rounds,
        session,
        Names(settings.namespace),
        audit=audit,
        limits=Limits(max_message_bytes=settings.max_message_bytes),
        stage_timeout=settings.secure_stage_timeout,
    )


def lowest(*tags: int | None) -> int | None:
    """The lowest of the delivery tags that are set."""
    return min((t for t in tags if t is not None), default=None)
