"""The simulation loop: clients train with the real trainers, the real ``Aggregator`` applies.

Every update goes through ``aggregator.core.aggregator.Aggregator`` (validation,
deduplication, staleness, the configured strategy), so a simulated run
differs from a real one only in where time comes from: fits take a drawn
virtual duration instead of wall-clock time, and nothing crosses a broker.
A client fits at the moment it takes a model (its base version) and the
update lands ``duration + latency`` later, exactly as if it had trained
all that time on that version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from aggregator.core.activity import ActiveWorkers
from aggregator.core.aggregator import Applied
from aggregator.core.progress import StalenessStats
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.factory import build_core, build_strategy, train_config
from schemas.messages import ClientUpdate
from simulator.distributions import parse_distribution
from simulator.events import EventQueue
from simulator.result import SimulationResult
from simulator.settings import SimulationSettings
from simulator.workload import Participation, client_speeds, parse_speeds, poisson_times, read_trace
from training.loading import load_factory
from training.trainer import Trainer, TrainerContext, TrainerFactory
from worker.update import update_arrays

#: Tries to find an idle client for a Poisson participation before the arrival is dropped.
IDLE_PICK_ATTEMPTS = 20


@dataclass
class Client:
    index: int
    speed: float
    trainer: Trainer | None = None
    busy: bool = False
    once: bool = False
    updates: int = 0
    last_base: int | None = None

    @property
    def worker_id(self) -> str:
        return f"client-{self.index}"


@dataclass(frozen=True)
class _Join:
    participation: Participation
    once: bool


@dataclass(frozen=True)
class _Done:
    client: int
    update: ClientUpdate


class _Arrival:
    """The next Poisson participation."""


class _Check:
    """Re-check a synchronous round after a client's roster entry expires."""


class Simulation:
    """One configured run; ``run()`` returns a ``SimulationResult``. Deterministic under
    ``sim_seed``.
    """

    def __init__(self, settings: SimulationSettings, factory: TrainerFactory | None = None) -> None:
        self.settings = settings
        self.factory = factory or load_factory(settings.trainer)
        self.rng = np.random.default_rng(settings.sim_seed)
        self.evaluator = self._make_trainer(
            "aggregator", 0, settings.data_seed, model_seed=settings.seed
        )
        weights = {k: np.array(v, copy=True) for k, v in self.evaluator.initial_weights().items()}
        state = AggregatorState(
            run_id="simulation",
            version=0,
            weights=weights,
            applied=AppliedWindow(settings.applied_window),
        )
        self.strategy = build_strategy(settings)
        self.config = train_config(settings, self.strategy)
        self.core = build_core(settings, state, self.strategy)
        self.roster = ActiveWorkers(settings.worker_timeout)
        self.duration = parse_distribution(settings.duration)
        spread = (
            parse_distribution(settings.speed_distribution) if settings.speed_distribution else None
        )
        speeds = client_speeds(
            settings.client_count, parse_speeds(settings.speeds), spread, self.rng
        )
        self.clients = [Client(i, float(s)) for i, s in enumerate(speeds)]
        self.queue: EventQueue[Any] = EventQueue()
        self.now = 0.0
        self.staleness = StalenessStats()
        self.curve: list[dict[str, float]] = []
        self.waiting: list[Client] = []
        self.handled = 0
        self.dropped_arrivals = 0
        self.time_to_target: float | None = None
        self.stopped_because = ""

    # -- setup -------------------------------------------------------------------
    def _make_trainer(
        self, role: str, partition: int, seed: int, *, model_seed: int = 0
    ) -> Trainer:
        s = self.settings
        ctx = TrainerContext(
            role=role,  # type: ignore[arg-type]
            partition=partition,
            num_partitions=s.num_partitions,
            seed=seed,
            options=s.trainer_options(),
            model_seed=model_seed,
        )
        return self.factory(ctx)

    def _schedule_workload(self) -> None:
        s = self.settings
        if s.workload == "trace":
            for p in read_trace(s.trace_file or "", len(self.clients)):
                self.queue.push(p.time, _Join(p, once=True))
        elif s.workload == "poisson":
            self.queue.push(poisson_times(s.arrival_rate, 0.0, self.rng), _Arrival())
        else:
            at = 0.0
            for client in self.clients:
                if s.join_rate:
                    at = poisson_times(s.join_rate, at, self.rng)
                self.queue.push(at, _Join(Participation(at, client.index), once=False))

    # -- the loop ----------------------------------------------------------------
    def run(self) -> SimulationResult:
        started = time.perf_counter()
        self._schedule_workload()
        self._evaluate()
        limit = self.settings.max_seconds
        while not self.stopped_because:
            if not self.queue:
                self.stopped_because = "no more clients"
                break
            at, event = self.queue.pop()
            if limit is not None and at > limit:
                self.now, self.stopped_because = limit, f"reached {limit:g} virtual seconds"
                break
            self.now = at
            self._dispatch(event)
            self._check_stop()
        self._evaluate()
        return SimulationResult.collect(self, time.perf_counter() - started)

    def _dispatch(self, event: Any) -> None:
        if isinstance(event, _Done):
            self._on_done(self.clients[event.client], event.update)
        elif isinstance(event, _Join):
            self._on_join(event)
        elif isinstance(event, _Arrival):
            self._on_arrival()
        else:
            self._close_round()

    def _on_join(self, event: _Join) -> None:
        client = self.clients[event.participation.client]
        if client.busy:
            self.dropped_arrivals += 1
            return
        client.once = event.once
        self.roster.seen(client.worker_id, self.now)  # its model request
        self._start(client, event.participation.duration)

    def _on_arrival(self) -> None:
        for _ in range(IDLE_PICK_ATTEMPTS):
            client = self.clients[int(self.rng.integers(len(self.clients)))]
            if not client.busy:
                self.queue.push(self.now, _Join(Participation(self.now, client.index), once=True))
                break
        else:
            self.dropped_arrivals += 1
        self.queue.push(poisson_times(self.settings.arrival_rate, self.now, self.rng), _Arrival())

    # -- clients -------------------------------------------------------------------
    def _start(self, client: Client, duration: float | None = None) -> None:
        """Take the current model and train on it; the update lands after the fit's duration."""
        version = self.core.state.version
        if self.config.synchronous and client.last_base == version:
            self.waiting.append(client)  # a synchronous worker trains each version once
            return
        if client.trainer is None:
            client.trainer = self._make_trainer(
                "simulator", client.index % self.settings.num_partitions, self.settings.data_seed
            )
        base = {k: v.copy() for k, v in self.core.state.weights.items()}
        fit = client.trainer.fit(dict(base), self.config)
        seconds = (
            duration if duration is not None else client.speed * self.duration.sample(self.rng)
        )
        update = ClientUpdate(
            update_id=f"simulated-{client.index}-{client.updates}",
            worker_id=client.worker_id,
            base_version=version,
            num_examples=fit.num_examples,
            update_kind=self.config.update_kind,
            train_seconds=seconds,
            arrays=update_arrays(base, fit.weights, self.config.update_kind),
        )
        client.busy, client.last_base = True, version
        self.queue.push(self.now + seconds + self.settings.latency, _Done(client.index, update))

    def _on_done(self, client: Client, update: ClientUpdate) -> None:
        client.busy = False
        client.updates += 1
        self.roster.seen(client.worker_id, self.now)
        before = self.core.state.version
        outcome = self.core.handle(update)
        self.handled += 1
        if isinstance(outcome, Applied):
            self.staleness.add(outcome.staleness)
        self._after_version_change(before)
        self._close_round()
        limit = self.settings.session_updates
        if client.once or (limit is not None and client.updates >= limit):
            if self.config.synchronous:  # the round may be waiting for this client until it expires
                self.queue.push(self.roster.expires_at(client.worker_id) or self.now, _Check())
        else:
            self._start(client)

    # -- versions ------------------------------------------------------------------
    def _close_round(self) -> None:
        if not self.config.synchronous:
            return  # only round-based strategies close rounds; spare the roster scan
        before = self.core.state.version
        if self.core.close_round(self.roster.active(self.now)):
            self._after_version_change(before)

    def _after_version_change(self, before: int) -> None:
        version = self.core.state.version
        if version == before:
            return
        every = self.settings.eval_every
        if version // every != before // every:
            self._evaluate()
        waiting, self.waiting = self.waiting, []
        for client in waiting:
            self._start(client)

    def _evaluate(self) -> None:
        state = self.core.state
        if self.curve and self.curve[-1]["version"] == state.version:
            return
        result = self.evaluator.evaluate(dict(state.weights), self.config)
        accuracy = float(result.metrics.get("accuracy", float("nan")))
        self.curve.append(
            {
                "time": self.now,
                "version": state.version,
                "updates": self.handled,
                "accuracy": accuracy,
                "loss": result.loss,
            }
        )
        target = self.settings.target_accuracy
        if target is not None and self.time_to_target is None and accuracy >= target:
            self.time_to_target = self.now

    def _check_stop(self) -> None:
        s = self.settings
        if s.max_versions is not None and self.core.state.version >= s.max_versions:
            self.stopped_because = f"reached {s.max_versions} versions"
        elif s.max_updates is not None and self.handled >= s.max_updates:
            self.stopped_because = f"handled {s.max_updates} updates"
        elif self.time_to_target is not None:
            self.stopped_because = f"reached target accuracy {s.target_accuracy}"


def simulate(
    settings: SimulationSettings, factory: TrainerFactory | None = None
) -> SimulationResult:
    """Run one simulation."""
    return Simulation(settings, factory).run()


__all__ = ["Simulation", "SimulationResult", "simulate"]
