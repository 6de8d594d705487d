"""The worker's part in secure aggregation: mask its delta, never send it in the clear.

The aggregator broadcasts each stage of a buffer (``secure-round``); a worker
in the cohort answers every stage once, from one ``SecAggClient`` per buffer
whose secrets live only in memory (a worker that restarts is a dropout). It
trains the buffer's version when invited; the masked stage waits for that
fit. Anything it cannot answer safely (``Refused``) ends its part in that
buffer: it answers nothing more there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from broker.connection import AmqpSession
from broker.errors import PublishFailed
from broker.names import SECURE_KEY, Names
from broker.properties import secure_upload_properties
from runtime.eventlog import EventLog
from schemas.codec import encode
from schemas.messages import ClientUpdate, ModelVersion
from schemas.secure import SecureRound, SecureUpload
from secagg.errors import ProtocolError, Refused
from secagg.messages import NeighbourKeys, ShareInbox, UnmaskRequest, WorkerMessage
from training.weights import flatten

if TYPE_CHECKING:  # the protocol (and the cryptography package) loads with the first invitation
    from secagg.client import SecAggClient

log = logging.getLogger("fedmq.worker")

#: Unit weights: every contribution counts the same (``aggregator.core.secure_fedbuff``).
WEIGHT = 1.0
#: A failed publish of a protocol message is tried again after this long.
RETRY_SECONDS = 1.0

Collected = tuple[ClientUpdate, bytes]


class Settles(Protocol):
    def settled(self, base_version: int | None) -> None: ...


class Requests(Protocol):
    def request_due(self, now: float, missing: bool = False) -> bool: ...


def secure_mode(model: ModelVersion | None) -> bool:
    """The aggregator asked for secure aggregation: no update may leave in the clear."""
    return model is not None and model.config.secure_aggregation


class SecureParticipant:
    """Follows the newest secure round and says what, if anything, to upload next."""

    def __init__(
        self,
        identity: str,
        events: EventLog,
        *,
        entropy: Callable[[int], bytes] = os.urandom,
        min_noise: float | None = None,
    ) -> None:
        self.identity, self.events, self.entropy = identity, events, entropy
        self.min_noise = min_noise
        self.round: SecureRound | None = None
        self.client: SecAggClient | None = None
        self.delta: np.ndarray | None = None
        self.delta_version: int | None = None
        self.answered: set[tuple[str, str]] = set()
        self._prepared: dict[tuple[str, str], SecureUpload] = {}
        self.contributed = 0
        self._retry_at = 0.0

    # -- hooks of the worker's loop (each does nothing unless the model asks for secure mode) ----
    def take_fit(
        self, collected: Collected | None, latest: ModelVersion | None, fitting: Settles
    ) -> Collected | None:
        """In secure mode keep a finished fit's delta for masking and hand nothing to the outbox."""
        if collected is None or latest is None or not secure_mode(latest):
            return collected
        self.fitted(collected[0], latest)  # every version has the same layout: flatten like it
        fitting.settled(collected[0].base_version)
        return None

    def may_train(
        self,
        latest: ModelVersion | None,
        now: float,
        inbox: Requests,
        request: Callable[[], None],
    ) -> bool:
        """In secure mode train only for a buffer this worker is invited to; ask for the model (or
        say it is available) when needed."""
        if not secure_mode(latest):
            return True
        if self.wants_model(latest) and inbox.request_due(now, True):
            request()
        return latest is not None and self.wants_fit(latest)

    def send(
        self, session: AmqpSession, names: Names, latest: ModelVersion | None, now: float
    ) -> None:
        """Publish this stage's answer, confirmed (a failure is tried again shortly)."""
        if not secure_mode(latest) or now < self._retry_at:
            return
        upload = self.next_upload()
        if upload is None:
            return
        props = secure_upload_properties(upload.buffer_id, upload.stage, self.identity)
        try:
            session.publish(names.inbox_exchange, SECURE_KEY, encode(upload), props, mandatory=True)
        except PublishFailed as exc:
            log.info("secure %s upload not delivered (%s); retrying", upload.stage, exc)
            self._retry_at = now + RETRY_SECONDS
            return
        self.sent(upload)

    def offer(self, message: SecureRound | None) -> None:
        """A round broadcast arrived; a new buffer of ours gets a fresh client (fresh secrets)."""
        if message is None:
            return
        self.round = message
        if self.identity not in message.cohort:
            return
        if self.client is None or self.client.setup.buffer_id != message.buffer_id:
            if not self._enough_noise(message):
                return
            from secagg.client import SecAggClient
            from secagg.wire import setup_of

            try:
                self.client = SecAggClient(setup_of(message), self.identity, entropy=self.entropy)
            except (ValueError, Refused) as exc:
                log.warning("refusing secure buffer %s: %s", message.buffer_id, exc)
                self.client = None
                return
            self.events.write(
                "secure-invited", buffer_id=message.buffer_id, version=message.version
            )

    def _enough_noise(self, message: SecureRound) -> bool:
        """False, and the buffer refused, when it asks for less distributed DP noise than this
        worker's minimum (``--secure-dp-min-noise``)."""
        noise, least = message.distributed_dp, self.min_noise
        if least is None or (noise is not None and noise.noise_multiplier >= least):
            return True
        asked = 0.0 if noise is None else noise.noise_multiplier
        detail = f"noise multiplier {asked:g} below this worker's minimum {least:g}"
        log.warning("refusing secure buffer %s: %s", message.buffer_id, detail)
        self.events.write("secure-refused", buffer_id=message.buffer_id, detail=detail)
        self.client = None
        return False

    def wants_fit(self, model: ModelVersion) -> bool:
        """Invited to a buffer on ``model``'s version, and not trained on it yet."""
        current = self.round
        return (
            current is not None
            and self.client is not None
            and current.version == model.version
            and self.delta_version != model.version
        )

    def wants_model(self, model: ModelVersion | None) -> bool:
        """Ask for the model: invited on a version this worker does not hold (its broadcast was
        missed), or not invited at all (the request tells the aggregator this worker is available:
        cohorts are drawn from the workers heard from)."""
        current = self.round
        if current is None or self.client is None or self.identity not in current.cohort:
            return True
        return model is None or model.version < current.version

    def fitted(self, update: ClientUpdate, model: ModelVersion) -> None:
        """The fit on ``model`` finished: keep its delta for the masked stage (never send it)."""
        self.delta = flatten(update.arrays, model.arrays)
        self.delta_version = update.base_version

    def next_upload(self) -> SecureUpload | None:
        """This stage's answer, once per stage (``None``: nothing to send, or not yet)."""
        current, client = self.round, self.client
        if current is None or client is None or client.setup.buffer_id != current.buffer_id:
            return None
        key = (current.buffer_id, current.stage)
        if key in self.answered:
            return None
        if key in self._prepared:  # a publish that failed goes again, the very same message
            return self._prepared[key]
        try:
            answer = self._answer(current, client)
        except ProtocolError as refusal:  # refused, or a stage this worker missed the start of
            log.warning("secure buffer %s: %s", current.buffer_id, refusal)
            self.events.write("secure-refused", buffer_id=current.buffer_id, detail=str(refusal))
            self.client = None
            return None
        if answer is None:
            return None
        from secagg.wire import upload_of

        self._prepared = {key: upload_of(answer)}
        # Before the publish: a worker killed between the broker's confirm and ``sent`` leaves
        # this line, so what the aggregator counted is always something the worker sent off.
        self.events.write("secure-prepared", buffer_id=current.buffer_id, stage=current.stage)
        return self._prepared[key]

    def sent(self, upload: SecureUpload) -> None:
        """The broker confirmed ``upload``."""
        self.answered.add((upload.buffer_id, upload.stage))
        self._prepared.pop((upload.buffer_id, upload.stage), None)
        if upload.stage == "masked":
            self.contributed += 1
        self.events.write("secure-sent", buffer_id=upload.buffer_id, stage=upload.stage)

    def _answer(self, current: SecureRound, client: SecAggClient) -> WorkerMessage | None:
        if current.stage == "keys":
            return client.advertise_keys()
        from secagg.wire import addressed_to

        request = addressed_to(current, self.identity)
        if isinstance(request, NeighbourKeys):
            return client.share_keys(request)
        if isinstance(request, ShareInbox):
            if self.delta is None or self.delta_version != current.version:
                return None  # still training
            return client.masked_input(request, self.delta, WEIGHT)
        if isinstance(request, UnmaskRequest):
            return client.unmask(request)
        return None
