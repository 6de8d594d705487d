"""Prometheus metrics of the aggregator, the settings line at startup, and the partition claim
order.
"""

from __future__ import annotations

import urllib.request
from typing import Any

from aggregator.core.aggregator import Applied, Duplicate
from aggregator.core.reports import PrivacyReport, Progress
from aggregator.core.validation import Rejected
from aggregator.settings import AggregatorSettings
from aggregator.shell.observer import PrometheusObserver
from runtime.observability import describe_settings, serve_metrics
from worker.claim import claim_order


def applied(staleness: int) -> Applied:
    return Applied("u" * 8, "w", 0, staleness, 0.5, 1, True)


def progress(**over: Any) -> Progress:
    fields: dict[str, Any] = dict(
        version=1,
        elapsed=1.0,
        updates_per_s=0.0,
        versions_per_s=0.0,
        staleness_mean=0.0,
        staleness_max=0,
        applied=0,
        rejected=0,
        duplicates=0,
        pending=0,
        workers=0,
        accuracy=None,
        loss=None,
    )
    return Progress(**{**fields, **over})


def test_a_batch_counts_applied_rejected_by_reason_and_duplicates() -> None:
    obs = PrometheusObserver()

    obs.handled(
        [
            applied(0),
            applied(5),
            Rejected("non-finite", "NaN"),
            Rejected("non-finite", "x"),
            Duplicate("d" * 8),
        ],
        0.02,
    )

    value = obs.registry.get_sample_value
    assert value("fedmq_updates_applied_total") == 2
    assert value("fedmq_updates_rejected_total", {"reason": "non-finite"}) == 2
    assert value("fedmq_updates_duplicate_total") == 1
    assert value("fedmq_update_staleness_bucket", {"le": "4.0"}) == 1
    assert value("fedmq_update_staleness_sum") == 5
    assert value("fedmq_apply_seconds_count") == 5


def test_versions_evaluations_and_progress_become_gauges() -> None:
    obs = PrometheusObserver()

    obs.published(7)
    obs.evaluated(7, 0.25, {"accuracy": 0.9})
    obs.progress(progress(updates_per_s=3.5, workers=4))

    value = obs.registry.get_sample_value
    assert value("fedmq_versions_published_total") == 1 and value("fedmq_model_version") == 7
    assert value("fedmq_test_accuracy") == 0.9 and value("fedmq_test_loss") == 0.25
    assert value("fedmq_updates_per_second") == 3.5 and value("fedmq_workers_active") == 4
    assert value("fedmq_privacy_epsilon") is None


def test_epsilon_is_exported_once_the_aggregator_reports_it() -> None:
    obs = PrometheusObserver()

    privacy = PrivacyReport("central", 1.75, 1e-5, None, 1.0, 1.0, 2, 1, 2, "rdp", False)
    obs.progress(progress(privacy=privacy))

    assert obs.registry.get_sample_value("fedmq_privacy_epsilon") == 1.75


def test_the_metrics_endpoint_serves_the_registry_and_stops() -> None:
    obs = PrometheusObserver()
    obs.published(3)
    settings = AggregatorSettings(metrics_port=0)

    server = serve_metrics(obs.registry, settings)
    try:
        assert server is not None
        body = (
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
            .read()
            .decode()
        )
    finally:
        server.close()  # type: ignore[union-attr]

    assert "fedmq_model_version 3.0" in body


def test_no_endpoint_without_a_port() -> None:
    assert serve_metrics(PrometheusObserver().registry, AggregatorSettings()) is None


def test_the_startup_line_masks_the_password_and_shows_the_rest() -> None:
    settings = AggregatorSettings(
        amqp_url="amqp://alice:s3cret-pw@rabbit:5672/fedmq", strategy="fedbuff"
    )

    line = describe_settings(settings)

    assert "amqp_url=amqp://alice:***@rabbit:5672/fedmq" in line
    assert "s3cret-pw" not in line and "strategy=fedbuff" in line


def test_a_worker_asks_for_its_previous_partition_first_then_the_lowest() -> None:
    assert list(claim_order(4, None)) == [0, 1, 2, 3]
    assert list(claim_order(4, 2)) == [2, 0, 1, 3]
    assert list(claim_order(2, 5)) == [0, 1]
