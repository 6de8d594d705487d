"""FedBuff under secure aggregation: the aggregator learns each buffer's sum, never an update.

A buffer is one run of SecAgg+ (``secagg``) over a cohort fixed when the
buffer opens: the workers active at that moment (sorted, at most
``cohort_size``), invited to train the current version and contribute. The
buffer steps the model once, with the sum of at least ``buffer_size``
contributions; a buffer that aborts (too few survivors) steps nothing and a
new one is opened on the same version, so a contribution counts at most
once. Every contribution has staleness 0 (the cohort trains the version the
buffer opened on) and unit weight, so a step is

    x <- x + eta * (sum of m clipped deltas) / m,

FedBuff with ``sample_weighting=False`` on clipped deltas, up to the
fixed-point rounding error (``secagg.quantize``). Plaintext updates are
refused: this federation takes only masked inputs.

With distributed DP (``privacy``) every buffer asks its workers for Skellam
noise with multiplier z (``BufferSetup.noise_multiplier``), each committed
buffer is charged to its contributors (``aggregator.core.distributed_dp``), and
no buffer opens once the next one could pass the privacy budget.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aggregator.core.distributed_dp import DistributedPrivacy
from aggregator.core.reports import PrivacyReport
from aggregator.core.state import AggregatorState
from aggregator.core.strategy import Contribution, Scalars, StepOutcome, Strategy
from aggregator.core.validation import Rejected
from schemas.messages import UpdateKind
from secagg.buffer import BufferSetup
from secagg.errors import Aborted, Receipt
from secagg.ledger import BufferSum, Stage
from secagg.messages import AggregatorMessage
from secagg.params import choose_parameters
from secagg.quantize import decode_sum
from secagg.server import SecAggServer
from training.weights import Weights, dimension, unflatten

#: Every worker's weight: unit weights, so a hostile example count buys nothing.
UNIT_WEIGHT = 1.0
_SERVER = "secagg/"


class SecureFedBuff(Strategy):
    """Buffers are SecAgg+ runs; ``open_buffer``/``receive``/``advance`` drive the current one."""

    name = "fedbuff-secure"
    update_kind: UpdateKind = "delta"
    secure_aggregation = True
    synchronous = True

    def __init__(
        self,
        *,
        buffer_size: int,
        cohort_size: int,
        clip: float,
        server_lr: float = 1.0,
        dropout_rate: float = 0.2,
        privacy: DistributedPrivacy | None = None,
    ) -> None:
        if buffer_size < 2:
            raise ValueError("secure aggregation needs a buffer of at least 2 contributions")
        if cohort_size < buffer_size:
            raise ValueError("the cohort must be at least as large as the buffer")
        if not clip > 0 or not server_lr > 0:
            raise ValueError("clip and server_lr must be positive")
        self.buffer_size, self.cohort_size = buffer_size, cohort_size
        self.clip, self.server_lr, self.dropout_rate = clip, server_lr, dropout_rate
        self.privacy = privacy
        if privacy is not None and privacy.config.min_contributors != buffer_size:
            raise ValueError("distributed DP must be accounted for sums of buffer_size")
        self.server: SecAggServer | None = None
        self.round_version = -1
        self.attempt = 0
        self.completed = 0
        self.aborted = 0

    # -- the strategy contract -------------------------------------------------------------
    def refuse(self, worker_id: str) -> Rejected | None:
        return Rejected(
            "secure-aggregation-only", "this federation takes masked inputs (secure-upload) only"
        )

    def add(self, model: Weights, contribution: Contribution) -> StepOutcome:
        return StepOutcome(0.0, stepped=False)  # never reached: ``refuse`` turns every update away

    def pending(self) -> int:
        server = self.server
        return 0 if server is None or self.is_closed() else len(server.ledger.masked)

    # -- buffers ---------------------------------------------------------------------------
    def is_closed(self) -> bool:
        """No buffer is running (none opened yet, or the last one finished or aborted)."""
        return self.server is None or self.server.stage in (Stage.DONE, Stage.ABORTED)

    def open_buffer(
        self, *, run_id: str, version: int, candidates: frozenset[str], model: Weights
    ) -> BufferSetup | None:
        """Open the next buffer over ``candidates`` (the active workers), if enough are there."""
        if not self.is_closed() or len(candidates) < self.buffer_size or self.closed():
            return None
        cohort = tuple(sorted(candidates))[: self.cohort_size]
        params = choose_parameters(len(cohort), dropout_rate=self.dropout_rate)
        self.attempt = self.attempt + 1 if version == self.round_version else 0
        self.round_version = version
        setup = BufferSetup(
            buffer_id=f"{run_id}.{version}.{self.attempt}",
            cohort=cohort,
            dimension=dimension(model),
            degree=params.degree,
            threshold=params.threshold,
            clip=self.clip,
            max_weight=UNIT_WEIGHT,
            min_contributors=self.buffer_size,
            noise_multiplier=0.0 if self.privacy is None else self.privacy.config.noise_multiplier,
        )
        self.server = SecAggServer(setup)
        return setup

    def receive(self, sender: str, message: object) -> Receipt:
        """Take a protocol message from the broker-validated ``sender``."""
        if self.server is None:
            raise RuntimeError("no buffer is open")
        return self.server.receive(sender, message)

    def stage_complete(self) -> bool:
        return self.server is not None and self.server.complete()

    def advance(self, model: Weights) -> tuple[AggregatorMessage, ...] | BufferSum | Aborted:
        """Close the current stage; on the buffer's sum, step ``model`` in place."""
        if self.server is None:
            raise RuntimeError("no buffer is open")
        result = self.server.advance()
        if isinstance(result, BufferSum):
            if self.privacy is not None:
                self.privacy.charge(result.contributors)
            self._step(model, result, self.server.setup)
            self.completed += 1
        elif isinstance(result, Aborted):
            self.aborted += 1
        return result

    def _step(self, model: Weights, outcome: BufferSum, setup: BufferSetup) -> None:
        mean = decode_sum(outcome.total, setup.fixed_point) / len(outcome.contributors)
        for name, delta in unflatten(mean, _float64_like(model)).items():
            model[name] += (self.server_lr * delta).astype(model[name].dtype)

    # -- privacy ---------------------------------------------------------------------------
    def closed(self) -> str | None:
        return None if self.privacy is None else self.privacy.closed()

    def privacy_report(self) -> PrivacyReport | None:
        return None if self.privacy is None else self.privacy.report()

    # -- checkpoint ------------------------------------------------------------------------
    def state(self) -> tuple[Scalars, Weights]:
        scalars: Scalars = {
            "round_version": self.round_version,
            "attempt": self.attempt,
            "completed": self.completed,
            "aborted": self.aborted,
            "server": None,
        }
        arrays: Weights = {}
        if self.server is not None:
            server_scalars, server_arrays = self.server.state()
            scalars["server"] = server_scalars
            arrays = {_SERVER + name: a for name, a in server_arrays.items()}
        if self.privacy is not None:
            scalars["dp"] = self.privacy.state()
        return scalars, arrays

    def restore(self, scalars: Scalars, arrays: Mapping[str, np.ndarray]) -> None:
        self.round_version = int(scalars.get("round_version", -1))
        self.attempt = int(scalars.get("attempt", 0))
        self.completed = int(scalars.get("completed", 0))
        self.aborted = int(scalars.get("aborted", 0))
        if self.privacy is not None:
            self.privacy.restore(dict(scalars.get("dp", {})))
        server = scalars.get("server")
        if server is not None:
            own = {
                n[len(_SERVER) :]: np.array(a) for n, a in arrays.items() if n.startswith(_SERVER)
            }
            self.server = SecAggServer.restore(server, own)


def _float64_like(model: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.empty(a.shape, dtype=np.float64) for name, a in model.items()}


def close_stage(
    state: AggregatorState, strategy: SecureFedBuff
) -> tuple[AggregatorMessage, ...] | BufferSum | Aborted:
    """Close the open buffer's current stage; its sum steps the model and makes a new version."""
    result = strategy.advance(state.weights)
    if isinstance(result, BufferSum):
        state.version += 1
        state.counters.applied += len(result.contributors)
    return result
