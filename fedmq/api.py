"""Run a federation from Python (scripts, notebooks): an aggregator and workers in this process.

::

    from fedmq.api import AggregatorSettings, run

    result = run(AggregatorSettings(namespace="nb", max_versions=200), trainer=my_factory)
    print(result.summary.accuracy, result.workers["nb-worker-0"].updates_confirmed)

The aggregator and each worker are the same services ``fedmq aggregator`` and ``fedmq
worker`` run, each in a thread of its own with its own broker connection (pika's
connections are not thread-safe). ``trainer`` is a factory ``(TrainerContext) ->
Trainer``, called once per role and partition, or one ``Trainer`` object that every role
shares (then its ``fit`` must be safe to call from several threads at once). Workers take
their broker and task settings from the aggregator's, so the two cannot disagree;
``worker_settings`` changes anything else: a mapping for every worker, or a function of
the worker's index returning one (a provisioned worker's own user, say). Workers of
other processes or machines may join the same namespace as usual.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aggregator.core.tracker import RunSummary
from aggregator.settings import AggregatorSettings
from broker.settings import BrokerSettings
from training.loading import build_trainer
from training.settings import TaskSettings
from training.trainer import Role, Trainer, TrainerContext, TrainerFactory
from worker.service import WorkerStats
from worker.settings import WorkerSettings

__all__ = [
    "AggregatorSettings", "Federation", "FederationResult", "Trainer", "TrainerContext",
    "WorkerSettings", "run",
]  # fmt: skip

#: Settings for every worker, or a function of the worker's index returning them.
WorkerOverrides = Mapping[str, Any] | Callable[[int], Mapping[str, Any]]
#: How long workers may take to see the final model and stop before they are told to.
WORKER_EXIT_GRACE = 30.0
#: Settings a worker takes from the aggregator: where the broker is, and the task.
SHARED_FIELDS = frozenset(BrokerSettings.model_fields) | frozenset(TaskSettings.model_fields)


@dataclass(frozen=True)
class FederationResult:
    """The aggregator's summary (as in ``summary.json``) and what each worker did, by id."""

    summary: RunSummary
    workers: dict[str, WorkerStats]


class _Role(threading.Thread):
    """One service in a thread; its result, or the exception that ended it."""

    def __init__(self, name: str, body: Callable[[threading.Event], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self.stop, self.body = threading.Event(), body
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.body(self.stop)
        except BaseException as exc:  # handed to the caller's thread by ``Federation.run``
            self.error = exc


class Federation:
    """An aggregator and ``workers`` workers (partitions 0..workers-1) on one namespace."""

    def __init__(
        self,
        settings: AggregatorSettings,
        trainer: TrainerFactory | Trainer,
        *,
        workers: int = 4,
        worker_settings: WorkerOverrides | None = None,
        cleanup: bool = False,
    ) -> None:
        """``cleanup``: delete the namespace's queues and exchanges once everything stopped."""
        if not 0 <= workers <= settings.num_partitions:
            raise ValueError(
                f"workers must be between 0 and num_partitions ({settings.num_partitions}), "
                f"got {workers}"
            )
        self.settings, self.trainer, self.cleanup = settings, trainer, cleanup
        extra = worker_settings if callable(worker_settings) else lambda _i: worker_settings or {}
        self.workers = [self.settings_for_worker(i, extra(i)) for i in range(workers)]
        self._roles: list[_Role] = []

    def settings_for_worker(self, index: int, extra: Mapping[str, Any]) -> WorkerSettings:
        """Worker ``index``: the aggregator's broker and task settings, its own id and partition."""
        shared = self.settings.model_dump(
            include=set(SHARED_FIELDS & set(WorkerSettings.model_fields))
        )
        own = {"worker_id": f"{self.settings.namespace}-worker-{index}", "partition_index": index}
        return WorkerSettings(**{**shared, **own, **extra})

    def _trainer(self, role: Role, partition: int, settings: TaskSettings) -> Trainer:
        if isinstance(self.trainer, Trainer) and not isinstance(self.trainer, type):
            return self.trainer
        seed = self.settings.seed if role == "aggregator" else 0
        return build_trainer(
            self.trainer, settings, role=role, partition=partition, model_seed=seed
        )

    def _aggregator(self, stop: threading.Event) -> RunSummary:
        from aggregator.shell.service import AggregatorService

        trainer = self._trainer("aggregator", 0, self.settings)
        return AggregatorService(self.settings, trainer, stop=stop).run()

    def _worker(self, settings: WorkerSettings) -> Callable[[threading.Event], WorkerStats]:
        from worker.service import WorkerService

        def body(stop: threading.Event) -> WorkerStats:
            trainer = self._trainer("worker", settings.partition_index, settings)
            return WorkerService(settings, trainer, stop=stop).run()

        return body

    def stop(self) -> None:
        """Ask every service to stop (from any thread); ``run`` then returns what they did."""
        for role in self._roles:
            role.stop.set()

    def run(self) -> FederationResult:
        """Start everything, wait for the aggregator's stop condition, then for the workers."""
        aggregator = _Role("fedmq-aggregator", self._aggregator)
        workers = {w.worker_id: _Role(w.worker_id, self._worker(w)) for w in self.workers}
        self._roles = [aggregator, *workers.values()]
        for role in self._roles:
            role.start()
        try:
            aggregator.join()
        except KeyboardInterrupt:
            self.stop()
            aggregator.join()
        self._finish(list(workers.values()))
        if self.cleanup:
            self._delete_namespace()
        for role in self._roles:
            if role.error is not None:
                raise role.error
        return FederationResult(aggregator.result, {k: r.result for k, r in workers.items()})

    def _delete_namespace(self) -> None:
        from broker.connection import AmqpSession
        from broker.names import Names
        from broker.teardown import delete_namespace

        with AmqpSession(self.settings, name="fedmq-api-cleanup") as session:
            delete_namespace(session, Names(self.settings.namespace))

    def _finish(self, workers: list[_Role]) -> None:
        """Workers stop by themselves on the final model; the slow ones (or all, when the
        aggregator failed) are told to.
        """
        deadline = time.monotonic() + (WORKER_EXIT_GRACE if self._roles[0].error is None else 0)
        for role in workers:
            role.join(max(deadline - time.monotonic(), 0.0))
        self.stop()
        for role in workers:
            role.join()


def run(
    settings: AggregatorSettings,
    trainer: TrainerFactory | Trainer,
    *,
    workers: int = 4,
    worker_settings: WorkerOverrides | None = None,
    cleanup: bool = False,
) -> FederationResult:
    """Run a federation to its stop condition and return what it achieved (see ``Federation``)."""
    return Federation(
        settings, trainer, workers=workers, worker_settings=worker_settings, cleanup=cleanup
    ).run()
