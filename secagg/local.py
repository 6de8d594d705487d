"""One buffer run entirely in memory: every worker and the aggregator, with scripted dropouts.

For tests, benchmarks and the simulator; the services drive the same state
machines over the broker instead. ``dropouts`` maps a worker to the first
stage it misses (it sends nothing from then on), or it is absent.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from secagg.buffer import BufferSetup
from secagg.client import SecAggClient
from secagg.errors import Aborted, Refused, StageError
from secagg.ledger import BufferSum, Stage
from secagg.messages import (
    AggregatorMessage,
    NeighbourKeys,
    ShareInbox,
    UnmaskRequest,
    WorkerMessage,
)
from secagg.server import SecAggServer

STAGES = (Stage.KEYS, Stage.SHARES, Stage.MASKED, Stage.UNMASK)
Entropy = Callable[[int], bytes]


@dataclass
class Run:
    """What a run produced: the outcome, the aggregator, the workers' refusals and uploads."""

    outcome: BufferSum | Aborted
    server: SecAggServer
    refusals: dict[str, Refused] = field(default_factory=dict)
    uploaded: dict[str, list[WorkerMessage]] = field(default_factory=dict)


def seeded_entropy(seed: int, identity: str) -> Entropy:
    """Reproducible bytes for tests and benchmarks (never for a real deployment)."""
    return random.Random(f"{seed}:{identity}").randbytes


def run_buffer(
    setup: BufferSetup,
    updates: Mapping[str, npt.ArrayLike],
    weights: Mapping[str, float],
    *,
    dropouts: Mapping[str, Stage] | None = None,
    seed: int = 0,
    resume: Callable[[SecAggServer], SecAggServer] | None = None,
) -> Run:
    """Run the four stages; ``resume`` is called after every message and every stage change and may
    swap the aggregator for another (a copy restored from its checkpoint, say)."""
    swap = resume or (lambda server: server)
    drop = dict(dropouts or {})
    clients = {u: SecAggClient(setup, u, entropy=seeded_entropy(seed, u)) for u in setup.cohort}
    server = SecAggServer(setup)
    refusals: dict[str, Refused] = {}
    uploaded: dict[str, list[WorkerMessage]] = {}
    inbound: dict[str, AggregatorMessage] = {}
    for stage in STAGES:
        for u in setup.cohort:
            if not _live(drop, u, stage) or u in refusals:
                continue
            message = _step(
                clients[u], stage, inbound.get(u), updates.get(u), weights.get(u, 1.0), refusals
            )
            if message is not None:
                uploaded.setdefault(u, []).append(message)
                server.receive(u, message)
                server = swap(server)
        result = server.advance()
        server = swap(server)
        if isinstance(result, BufferSum | Aborted):
            return Run(result, server, refusals, uploaded)
        inbound = {m.recipient: m for m in server.outbox()}
    raise StageError("the unmask stage did not conclude the buffer")


def _live(dropouts: Mapping[str, Stage], worker: str, stage: Stage) -> bool:
    first_missed = dropouts.get(worker)
    return first_missed is None or STAGES.index(stage) < STAGES.index(first_missed)


def _step(
    client: SecAggClient,
    stage: Stage,
    message: AggregatorMessage | None,
    update: npt.ArrayLike | None,
    weight: float,
    refusals: dict[str, Refused],
) -> WorkerMessage | None:
    try:
        if stage is Stage.KEYS:
            return client.advertise_keys()
        if isinstance(message, NeighbourKeys):
            return client.share_keys(message)
        if isinstance(message, ShareInbox):
            vector = np.zeros(client.setup.dimension) if update is None else update
            return client.masked_input(message, vector, weight)
        if isinstance(message, UnmaskRequest):
            return client.unmask(message)
    except Refused as refusal:
        refusals[client.identity] = refusal
    return None
