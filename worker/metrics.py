"""A worker's own Prometheus metrics (served when ``--metrics-port`` is set)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class WorkerMetrics:
    """Counters the worker service updates as it goes; cheap enough to keep when nobody scrapes
    them.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.models_received = Counter(
            "fedmq_worker_models_received", "Model versions received.", registry=r
        )
        self.updates_confirmed = Counter(
            "fedmq_worker_updates_confirmed", "Updates the broker confirmed.", registry=r
        )
        self.publish_retries = Counter(
            "fedmq_worker_publish_retries", "Update publishes retried.", registry=r
        )
        self.updates_abandoned = Counter(
            "fedmq_worker_updates_abandoned",
            "Updates given up unconfirmed, by reason (too-stale: refused until past the bound).",
            ["reason"],
            registry=r,
        )
        self.train_seconds = Histogram(
            "fedmq_worker_train_seconds",
            "Seconds per local training (fit plus emulated slowness).",
            buckets=FIT_BUCKETS,
            registry=r,
        )
        self.partition = Gauge(
            "fedmq_worker_partition",
            "Data partition this worker trains on (-1 while standing by).",
            registry=r,
        )
        self.partition.set(-1)
