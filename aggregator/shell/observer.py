"""What the aggregator service tells the outside world about itself, through one object.

The service calls an ``Observer`` at four moments (a batch handled, a version
published, an evaluation, a progress tick) instead of scattering metric calls
through its loop. ``PrometheusObserver`` turns them into metrics;
``NullObserver`` is the default and does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from aggregator.core.aggregator import Applied, Duplicate, Outcome
from aggregator.core.reports import Progress
from aggregator.core.validation import Rejected

STALENESS_BUCKETS = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 100)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Observer(Protocol):
    def handled(self, outcomes: Sequence[Outcome], seconds: float) -> None:
        """A batch was applied, persisted, published and acknowledged in ``seconds``."""

    def published(self, version: int) -> None:
        """A model version was published (with a confirm)."""

    def evaluated(self, version: int, loss: float, metrics: Mapping[str, Any]) -> None:
        """The global model was evaluated on the test set."""

    def progress(self, progress: Progress) -> None:
        """A progress tick."""


class NullObserver:
    """Observes nothing."""

    def handled(self, outcomes: Sequence[Outcome], seconds: float) -> None:
        pass

    def published(self, version: int) -> None:
        pass

    def evaluated(self, version: int, loss: float, metrics: Mapping[str, Any]) -> None:
        pass

    def progress(self, progress: Progress) -> None:
        pass


class PrometheusObserver:
    """The aggregator's Prometheus metrics, in a registry of its own (``serve_metrics``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.versions = Counter(
            "fedmq_versions_published", "Model versions published (with a confirm).", registry=r
        )
        self.applied = Counter("fedmq_updates_applied", "Updates applied to the model.", registry=r)
        self.duplicates = Counter(
            "fedmq_updates_duplicate", "Redelivered updates recognised and skipped.", registry=r
        )
        self.rejected = Counter(
            "fedmq_updates_rejected", "Updates rejected, by reason.", ["reason"], registry=r
        )
        self.staleness = Histogram(
            "fedmq_update_staleness",
            "Staleness (versions) of applied updates.",
            buckets=STALENESS_BUCKETS,
            registry=r,
        )
        self.apply_seconds = Histogram(
            "fedmq_apply_seconds",
            "Per update: from its batch being taken to its ack (decode, validate, aggregate, "
            "checkpoint, publish).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.version = Gauge("fedmq_model_version", "Current model version.", registry=r)
        self.accuracy = Gauge(
            "fedmq_test_accuracy", "Test accuracy of the latest evaluated version.", registry=r
        )
        self.loss = Gauge(
            "fedmq_test_loss", "Test loss of the latest evaluated version.", registry=r
        )
        self.update_rate = Gauge(
            "fedmq_updates_per_second", "Applied updates per second (sliding window).", registry=r
        )
        self.workers = Gauge(
            "fedmq_workers_active", "Workers with an applied update in the last 30 s.", registry=r
        )
        self.epsilon: Gauge | None = None  # registered once a privacy budget is reported

    def handled(self, outcomes: Sequence[Outcome], seconds: float) -> None:
        for outcome in outcomes:
            if isinstance(outcome, Applied):
                self.applied.inc()
                self.staleness.observe(outcome.staleness)
            elif isinstance(outcome, Duplicate):
                self.duplicates.inc()
            elif isinstance(outcome, Rejected):
                self.rejected.labels(outcome.reason).inc()
            self.apply_seconds.observe(seconds)

    def published(self, version: int) -> None:
        self.versions.inc()
        self.version.set(version)

    def evaluated(self, version: int, loss: float, metrics: Mapping[str, Any]) -> None:
        self.loss.set(loss)
        accuracy = metrics.get("accuracy")
        if isinstance(accuracy, (int, float)):
            self.accuracy.set(accuracy)

    def progress(self, progress: Progress) -> None:
        self.update_rate.set(progress.updates_per_s)
        self.workers.set(progress.workers)
        if progress.privacy is not None:
            epsilon = progress.privacy.epsilon
            if self.epsilon is None:
                self.epsilon = Gauge(
                    "fedmq_privacy_epsilon",
                    "Privacy budget spent so far (epsilon).",
                    registry=self.registry,
                )
            self.epsilon.set(epsilon)
