"""The newest model version: from the worker's own latest-value queue, asked for on attach."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from broker.connection import AmqpSession
from broker.errors import AccessRefused, NotFound, PublishFailed
from broker.names import REQUEST_KEY, Names
from broker.properties import request_properties
from runtime.eventlog import EventLog
from schemas.chunks import read_chunk_header
from schemas.codec import Limits, decode, encode
from schemas.errors import DecodeError
from schemas.messages import ModelRequest, ModelVersion
from schemas.secure import SecureRound
from worker.assembly import ModelAssembly
from worker.metrics import WorkerMetrics
from worker.settings import WorkerSettings

log = logging.getLogger("fedmq.worker")

#: While no model has arrived, ask for one this often.
REQUEST_EVERY = 5.0
#: The most messages a final model is read in (its chunks); a bound on one peek.
FINAL_CHUNKS_MAX = 10_000


class ModelInbox:
    """Keeps the newest model of the current run; remembers whether the final one came.

    With a ``sender``, only messages whose broker-validated ``user_id`` is that
    user (the aggregator's) count: anyone else who can write the models
    exchange could otherwise stop every worker with one ``final: true`` or
    steer them with a forged version.
    """

    def __init__(
        self,
        *,
        limits: Limits,
        events: EventLog,
        metrics: WorkerMetrics,
        sender: str | None = None,
    ) -> None:
        self.limits, self.events, self.metrics = limits, events, metrics
        self.sender = sender
        self.refused: dict[str, int] = {}  # by claimed sender ("" for none)
        self.latest: ModelVersion | None = None
        self.secure_round: SecureRound | None = None
        self.final = False
        self.received = 0
        self._last_request = float("-inf")
        self._logged_first = False
        self.assembly = ModelAssembly(max_message_bytes=limits.max_message_bytes)

    @classmethod
    def for_worker(
        cls, settings: WorkerSettings, *, events: EventLog, metrics: WorkerMetrics
    ) -> ModelInbox:
        """The inbox of a worker with these settings (its message size limit, its aggregator)."""
        limits = Limits(max_message_bytes=settings.max_message_bytes)
        return cls(limits=limits, events=events, metrics=metrics, sender=settings.model_sender())

    def attached(self) -> None:
        """A new connection: ask again at once, and log the first model it brings."""
        self._last_request = float("-inf")
        self._logged_first = False

    def request_due(self, now: float, missing: bool = False) -> bool:
        """Whether to (re)send a model request: nothing received yet (or ``missing``: the version
        a secure round needs), and none sent recently."""
        if (self.latest is not None and not missing) or now - self._last_request < REQUEST_EVERY:
            return False
        self._last_request = now
        return True

    def receive(
        self,
        body: bytes | memoryview,
        content_type: str | None,
        headers: Mapping[str, Any],
        user_id: str | None,
    ) -> None:
        """Take a delivery from the model queue: a whole model, or one chunk of a model (a chunk
        from anyone but ``sender`` never reaches the reassembly)."""
        if self.sender is not None and user_id != self.sender:
            self._refuse(user_id or "")
            return
        try:
            header = read_chunk_header(headers)
        except DecodeError as exc:
            log.warning("ignoring an invalid model chunk: %s", exc)
            return
        if header is None:
            self.deliver(body, content_type, user_id)
            return
        whole = self.assembly.take(header, body)
        if whole is not None:
            self.deliver(whole, content_type, user_id)

    def deliver(
        self, body: bytes | memoryview, content_type: str | None, user_id: str | None = None
    ) -> None:
        """Take a model message (an invalid one, one from anyone but ``sender`` or an older version
        of the same run is ignored)."""
        if self.sender is not None and user_id != self.sender:
            self._refuse(user_id or "")
            return
        try:
            message = decode(body, content_type=content_type, limits=self.limits)
        except DecodeError as exc:
            log.warning("ignoring an invalid model message: %s", exc)
            return
        if isinstance(message, SecureRound):
            latest = self.latest
            if latest is None or latest.run_id == message.run_id:
                self.secure_round = message
            return
        if not isinstance(message, ModelVersion):
            log.warning("ignoring a %s message on the model queue", type(message).__name__)
            return
        self._take(message)

    def take_secure_round(self) -> SecureRound | None:
        """The secure round that arrived since the last call, if any (for the caller to follow)."""
        message, self.secure_round = self.secure_round, None
        return message

    def _take(self, model: ModelVersion) -> None:
        latest = self.latest
        same_run = latest is not None and latest.run_id == model.run_id
        if same_run and latest is not None and model.version < latest.version and not model.final:
            return
        self.latest = model
        self.final = self.final or model.final
        if not self._logged_first:
            self._logged_first = True
            self.events.write("model-received", version=model.version, run_id=model.run_id)
        self.received += 1
        self.metrics.models_received.inc()

    def _refuse(self, user: str) -> None:
        self.refused[user] = self.refused.get(user, 0) + 1
        if self.refused[user] == 1:  # once per sender: a flood must not flood the log too
            log.warning(
                "ignoring model messages from %r: only %r publishes models",
                user or "(no user_id)",
                self.sender,
            )
            self.events.write("model-refused", user_id=user, expected=self.sender)


def look_for_final(session: AmqpSession, names: Names, inbox: ModelInbox) -> None:
    """Peek at ``<ns>.final`` (nothing is consumed) and hand what is there to ``inbox``.

    Called on every attach, before the worker consumes its own queue: a run that ended
    before this connection (the worker attached late, or its previous connection's queue went
    with the final broadcast) still reaches its end. Whether the federation keeps a final model
    at all (an older provisioning may lack the queue or the permission) only costs a warning.
    """
    try:
        found = session.peek(names.final_queue, FINAL_CHUNKS_MAX)
    except (NotFound, AccessRefused) as exc:
        session.reset_channel()  # the 404/403 closed the channel
        log.warning("cannot look for a final model in %s (%s)", names.final_queue, exc)
        return
    for delivery in found:
        props = delivery.properties
        inbox.receive(delivery.body, props.content_type, props.headers, props.user_id)
    if found and inbox.final:
        log.info("the run has ended: its final model is in %s", names.final_queue)


def request_model(session: AmqpSession, names: Names, worker_id: str) -> None:
    """Ask the aggregator for the current version (answered on ``worker.<worker_id>``)."""
    request = ModelRequest(worker_id=worker_id)
    props = request_properties(worker_id, session.username)
    try:
        session.publish(names.inbox_exchange, REQUEST_KEY, encode(request), props)
    except PublishFailed as exc:
        log.info("model request not delivered (%s); the aggregator may not be up yet", exc)
