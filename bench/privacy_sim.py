"""A small in-process asynchronous federation for privacy measurements (no broker).

The aggregator core (strategy + privacy layer) and the built-in trainers run in
one process. Each client trains on the version current when it started;
completion times are exponential with a per-client mean, so updates arrive
out of order and stale, as they do over a broker. Clients are scheduled in
passes: every pass visits every client once, in random order.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aggregator.core.aggregator import Aggregator
from aggregator.core.reports import PrivacyReport
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.factory import build_strategy, train_config
from aggregator.settings import AggregatorSettings
from schemas.messages import ModelVersion
from training.trainer import Trainer
from training.weights import Weights
from worker.update import build_update


@dataclass
class SimResult:
    versions: int
    applied: int
    rejected: dict[str, int]
    accuracy: float
    loss: float
    stopped_because: str
    privacy: PrivacyReport | None
    worker_epsilon: dict[str, float] = field(default_factory=dict)


@dataclass
class _Flight:
    finish: float
    seq: int
    client: int
    model: ModelVersion = field(compare=False)

    def __lt__(self, other: _Flight) -> bool:
        return (self.finish, self.seq) < (other.finish, other.seq)


class Simulation:
    """Clients ``trainers`` against an aggregator built from ``settings``; ``evaluator`` scores the
    model.
    """

    def __init__(
        self,
        settings: AggregatorSettings,
        trainers: Sequence[Trainer],
        evaluator: Trainer,
        initial: Weights,
        *,
        seed: int,
    ) -> None:
        self.settings, self.trainers, self.evaluator = settings, trainers, evaluator
        self.strategy = build_strategy(settings)
        state = AggregatorState(
            "sim",
            0,
            {k: np.array(v, copy=True) for k, v in initial.items()},
            AppliedWindow(1 << 20),
        )
        self.core = Aggregator(state, self.strategy, max_staleness=settings.max_staleness)
        self.rng = np.random.default_rng(seed)
        self.speed = self.rng.lognormal(0.0, 0.5, len(trainers))
        self._order: list[int] = []
        self._flights: list[_Flight] = []
        self._busy: set[int] = set()
        self._fits = np.zeros(len(trainers), int)
        self._seq = 0

    def _model(self) -> ModelVersion:
        state = self.core.state
        arrays = {k: v.copy() for k, v in state.weights.items()}
        return ModelVersion(
            run_id="sim",
            version=state.version,
            created_at=0.0,
            config=train_config(self.settings, self.strategy),
            arrays=arrays,
        )

    def _next_client(self, max_fits: int | None) -> int | None:
        for _ in range(2):
            for i, c in enumerate(self._order):
                if c not in self._busy:
                    return self._order.pop(i)
            eligible = [
                c
                for c in range(len(self.trainers))
                if max_fits is None or self._fits[c] + (c in self._busy) < max_fits
            ]
            self._order += [c for c in self.rng.permutation(eligible) if c not in self._order]
        return None

    def _start(self, now: float, max_fits: int | None) -> None:
        client = self._next_client(max_fits)
        if client is None:
            return
        self._busy.add(client)
        self._seq += 1
        heapq.heappush(
            self._flights,
            _Flight(
                now + self.rng.exponential(self.speed[client]), self._seq, client, self._model()
            ),
        )

    def run(self, *, concurrency: int, max_versions: int, max_fits: int | None = None) -> SimResult:
        """Until the budget closes the strategy, ``max_versions`` is reached, or every client has
        done ``max_fits``.
        """
        for _ in range(concurrency):
            self._start(0.0, max_fits)
        worker_eps: dict[str, float] = {}
        stopped = "clients done"
        while self._flights:
            flight = heapq.heappop(self._flights)
            self._busy.discard(flight.client)
            fit = self.trainers[flight.client].fit(dict(flight.model.arrays), flight.model.config)
            self._fits[flight.client] += 1
            update = build_update(f"c{flight.client}", flight.model, fit, 0.0, rng=self.rng)
            self.core.handle(update)
            if "dp_epsilon" in fit.metrics:
                worker_eps[update.worker_id] = float(fit.metrics["dp_epsilon"])
            if self.strategy.closed():
                stopped = "privacy budget spent"
                break
            if self.core.state.version >= max_versions:
                stopped = f"{max_versions} versions"
                break
            self._start(flight.finish, max_fits)
        return self._result(stopped, worker_eps)

    def _result(self, stopped: str, worker_eps: dict[str, float]) -> SimResult:
        state = self.core.state
        score = self.evaluator.evaluate(
            dict(state.weights), train_config(self.settings, self.strategy)
        )
        return SimResult(
            versions=state.version,
            applied=state.counters.applied,
            rejected=dict(state.counters.rejected),
            accuracy=float(score.metrics["accuracy"]),
            loss=score.loss,
            stopped_because=stopped,
            privacy=self.strategy.privacy_report(),
            worker_epsilon=worker_eps,
        )
