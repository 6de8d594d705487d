"""The aggregator's side of SecAgg+ for one buffer: route, track survivors, unmask the sum.

Driving it (the service does this; no clock or broker here):

    server = SecAggServer(setup)
    server.receive(sender, message)   # the broker-validated sender
                                      # -> Accepted | Duplicate | Rejected
    server.complete()                 # everyone still live has answered this stage
    server.advance()                  # close the stage (on completion or a deadline):
                                      # -> the next stage's messages, or BufferSum, or Aborted

Stages: keys -> shares -> masked -> unmask -> done (or aborted, from any of
them). A worker that misses a stage is a dropout from then on; a stage closes
with fewer than max(t, min_contributors) live workers and the buffer aborts.
A buffer yields its sum at most once: after ``done`` or ``aborted`` nothing
changes it. ``state()``/``restore()`` checkpoint everything in between.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection
from typing import Any

import numpy as np

from secagg import server_checks as checks
from secagg import unmask
from secagg.buffer import BufferSetup
from secagg.errors import (
    Aborted,
    AbortReason,
    Accepted,
    Duplicate,
    Receipt,
    Rejected,
    StageError,
    Violation,
)
from secagg.ledger import BufferSum, Ledger, Stage, dump, load
from secagg.messages import (
    AdvertiseKeys,
    AggregatorMessage,
    EncryptedShares,
    MaskedInput,
    NeighbourKeys,
    PeerKeys,
    SealedShare,
    ShareInbox,
    UnmaskRequest,
    UnmaskShares,
)

_MESSAGE_OF = {
    Stage.KEYS: AdvertiseKeys,
    Stage.SHARES: EncryptedShares,
    Stage.MASKED: MaskedInput,
    Stage.UNMASK: UnmaskShares,
}
_NEXT = {Stage.KEYS: Stage.SHARES, Stage.SHARES: Stage.MASKED, Stage.MASKED: Stage.UNMASK}


class SecAggServer:
    """One buffer's protocol state at the aggregator (a pure state machine)."""

    def __init__(self, setup: BufferSetup, *, ledger: Ledger | None = None) -> None:
        self.setup = setup
        self.ledger = ledger or Ledger(Stage.KEYS, np.zeros(setup.dimension, dtype=np.uint32))

    @classmethod
    def restore(cls, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> SecAggServer:
        setup, ledger = load(scalars, arrays)
        return cls(setup, ledger=ledger)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able scalars and named arrays from which ``restore`` rebuilds this exactly."""
        return dump(self.setup, self.ledger)

    @property
    def stage(self) -> Stage:
        return self.ledger.stage

    @property
    def outcome(self) -> BufferSum | Aborted | None:
        return self.ledger.outcome

    def receive(self, sender: str, message: object) -> Receipt:
        """Take one message from the broker-validated ``sender``."""
        stage = self.stage
        if stage in (Stage.DONE, Stage.ABORTED):
            return Rejected(
                sender, Violation.BUFFER_CLOSED, f"buffer {self.setup.buffer_id} is {stage.value}"
            )
        refused = checks.check_envelope(self.setup, sender, message)
        if refused is not None:
            return refused
        if not isinstance(message, _MESSAGE_OF[stage]):
            return Rejected(
                sender,
                Violation.WRONG_STAGE,
                f"a {type(message).__name__} during stage {stage.value}",
            )
        if sender not in self._eligible():
            return Rejected(
                sender, Violation.NOT_A_SURVIVOR, f"{sender} dropped out before stage {stage.value}"
            )
        if isinstance(message, AdvertiseKeys):
            return self._take_advert(message)
        if isinstance(message, EncryptedShares):
            return self._take_bundle(message)
        if isinstance(message, MaskedInput):
            return self._take_masked(message)
        if isinstance(message, UnmaskShares):
            return self._take_unmask(message)
        raise StageError(
            f"no handler for {type(message).__name__}"
        )  # unreachable: _MESSAGE_OF covers every stage

    def waiting_for(self) -> frozenset[str]:
        """The live workers that have not answered the current stage."""
        if self.stage in (Stage.DONE, Stage.ABORTED):
            return frozenset()
        return frozenset(self._eligible()) - set(self._answers())

    def complete(self) -> bool:
        return self.stage not in (Stage.DONE, Stage.ABORTED) and not self.waiting_for()

    def advance(self) -> tuple[AggregatorMessage, ...] | BufferSum | Aborted:
        """Close the current stage: the next stage's messages, or the buffer's outcome."""
        stage, ledger = self.stage, self.ledger
        if stage in (Stage.DONE, Stage.ABORTED):
            raise StageError(f"buffer {self.setup.buffer_id} is already {stage.value}")
        if stage is Stage.UNMASK:
            return self._conclude(unmask.finish(self.setup, ledger))
        aborted = self._too_few(stage, self._answers())
        if aborted is None and stage is Stage.MASKED:
            aborted = unmask.check_recoverable(self.setup, ledger.bundles, ledger.masked)
        if aborted is not None:
            return self._conclude(aborted)
        ledger.stage = _NEXT[stage]
        return self.outbox()

    def outbox(self) -> tuple[AggregatorMessage, ...]:
        """The messages of the current stage (deterministic: resend them after a restore)."""
        if self.stage is Stage.SHARES:
            return self._neighbour_keys()
        if self.stage is Stage.MASKED:
            return self._inboxes()
        if self.stage is Stage.UNMASK:
            ledger = self.ledger
            requests = (
                unmask.request_for(self.setup, u, ledger.bundles, ledger.masked)
                for u in sorted(ledger.masked)
            )
            return tuple(
                UnmaskRequest(self.setup.buffer_id, u, s, d)
                for u, (s, d) in zip(sorted(ledger.masked), requests, strict=True)
            )
        return ()

    # -- receiving ---------------------------------------------------------------------------

    def _eligible(self) -> Collection[str]:
        """Who may send in the current stage: the survivors of the stage before."""
        ledger = self.ledger
        earlier: dict[Stage, Collection[str]] = {
            Stage.SHARES: ledger.adverts,
            Stage.MASKED: ledger.bundles,
            Stage.UNMASK: ledger.masked,
        }
        return earlier.get(self.stage, self.setup.cohort)

    def _answers(self) -> Collection[str]:
        """Who has answered the current stage."""
        ledger = self.ledger
        answers: dict[Stage, Collection[str]] = {
            Stage.KEYS: ledger.adverts,
            Stage.SHARES: ledger.bundles,
            Stage.MASKED: ledger.masked,
        }
        return answers.get(self.stage, ledger.unmasks)

    # Each message is validated before it is compared with an earlier one from its sender: a
    # comparison must only ever see well-formed fields.

    def _take_advert(self, message: AdvertiseKeys) -> Receipt:
        adverts = self.ledger.adverts
        others = [m for sender, m in adverts.items() if sender != message.sender]
        return _take(adverts, message.sender, message, checks.check_advert(message, others))

    def _take_bundle(self, message: EncryptedShares) -> Receipt:
        refused = checks.check_bundle(self.setup, message, self.ledger.adverts)
        return _take(self.ledger.bundles, message.sender, message, refused)

    def _take_masked(self, message: MaskedInput) -> Receipt:
        refused = checks.check_masked(self.setup, message)
        digest = hashlib.sha256(message.masked.tobytes()).digest() if refused is None else b""
        receipt = _take(self.ledger.masked, message.sender, digest, refused)
        if isinstance(receipt, Accepted):
            np.add(self.ledger.total, message.masked, out=self.ledger.total)
        return receipt

    def _take_unmask(self, message: UnmaskShares) -> Receipt:
        ledger = self.ledger
        survivors, dropped = unmask.request_for(
            self.setup, message.sender, ledger.bundles, ledger.masked
        )
        return _take(
            ledger.unmasks,
            message.sender,
            message,
            checks.check_unmask(message, survivors, dropped),
        )

    # -- closing stages ----------------------------------------------------------------------

    def _too_few(self, stage: Stage, answered: Collection[str]) -> Aborted | None:
        need = max(self.setup.threshold, self.setup.min_contributors)
        if len(answered) >= need:
            return None
        workers = len(self.setup.cohort)
        detail = f"{len(answered)} of {workers} workers answered stage {stage.value}; need {need}"
        return Aborted(stage.value, AbortReason.TOO_FEW_SURVIVORS, detail)

    def _conclude(self, outcome: BufferSum | Aborted) -> BufferSum | Aborted:
        self.ledger.outcome = outcome
        self.ledger.stage = Stage.DONE if isinstance(outcome, BufferSum) else Stage.ABORTED
        return outcome

    def _neighbour_keys(self) -> tuple[NeighbourKeys, ...]:
        adverts, setup = self.ledger.adverts, self.setup
        out = []
        for u in sorted(adverts):
            peers = sorted(setup.neighbours(u) & set(adverts))
            keys = tuple(PeerKeys(v, adverts[v].encryption_key, adverts[v].mask_key) for v in peers)
            out.append(NeighbourKeys(setup.buffer_id, u, keys))
        return tuple(out)

    def _inboxes(self) -> tuple[ShareInbox, ...]:
        bundles = self.ledger.bundles
        inbox: dict[str, list[SealedShare]] = defaultdict(list)
        for sender in sorted(bundles):
            for sealed in bundles[sender].shares:
                if (
                    sealed.receiver in bundles
                ):  # bundles for workers that dropped out are never delivered
                    inbox[sealed.receiver].append(sealed)
        return tuple(ShareInbox(self.setup.buffer_id, u, tuple(inbox[u])) for u in sorted(bundles))


def _take(table: dict[str, Any], sender: str, entry: object, refused: Rejected | None) -> Receipt:
    """Store a validated first entry; an identical second one is a Duplicate, another one is
    equivocation."""
    if refused is not None:
        return refused
    earlier = table.get(sender)
    if earlier is None:
        table[sender] = entry
        return Accepted(sender)
    if earlier == entry:
        return Duplicate(sender)
    return Rejected(
        sender,
        Violation.EQUIVOCATION,
        "a second, different message in one stage (the first stands)",
    )
