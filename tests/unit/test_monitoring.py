"""The monitoring files ask only for what fedmq serves, and every metric it serves is documented.

The metric names come from the real registries (the aggregator's observer and the
worker's metrics, each driven once so that lazily created metrics exist too); the
dashboard's queries, its data source and job labels, and the metrics table of
docs/operations.md are checked against them. ``.ci/run`` also runs Prometheus's own
``promtool check config`` on deploy/prometheus/prometheus.yml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from aggregator.core.aggregator import Applied
from aggregator.core.reports import PrivacyReport, Progress
from aggregator.core.validation import Rejected
from aggregator.shell.observer import PrometheusObserver
from worker.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OPERATIONS = ROOT / "docs" / "operations.md"


def registries() -> list[Any]:
    observer, worker = PrometheusObserver(), WorkerMetrics()
    observer.handled([Applied("u" * 8, "w", 0, 1, 0.5, 1, True), Rejected("framing", "x")], 0.01)
    privacy = PrivacyReport("central", 1.0, 1e-5, None, 1.1, 1.0, 1, 1, 4, "rdp", False)
    observer.progress(Progress(1, 1.0, 1.0, 1.0, 0.0, 0, 1, 1, 0, 0, 1, 0.5, 1.0, privacy))
    return [observer.registry, worker.registry]


def served_samples() -> set[str]:
    """Every sample name a scrape shows (``_total``, ``_bucket``, ``_sum`` ... included)."""
    return {s.name for reg in registries() for m in reg.collect() for s in m.samples}


def exposed_names() -> set[str]:
    """Each metric as an operator queries it: counters with ``_total``, the others as named."""
    return {
        f"{m.name}_total" if m.type == "counter" else m.name
        for reg in registries()
        for m in reg.collect()
    }


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads((DEPLOY / "grafana" / "dashboards" / "fedmq.json").read_text()))


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_the_dashboard_only_asks_for_metrics_fedmq_serves(dashboard: dict[str, Any]) -> None:
    asked = {name for e in expressions(dashboard) for name in re.findall(r"\b(fedmq_\w+)", e)}

    assert asked and asked <= served_samples(), asked - served_samples()


def test_every_panel_reads_the_provisioned_data_source(dashboard: dict[str, Any]) -> None:
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uids = {source["uid"] for source in provisioned["datasources"]}

    assert {p["datasource"]["uid"] for p in dashboard["panels"]} <= uids


def test_every_job_the_dashboard_names_is_scraped(dashboard: dict[str, Any]) -> None:
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in prometheus["scrape_configs"]}

    asked = {job for e in expressions(dashboard) for job in re.findall(r'job="([^"]+)"', e)}

    assert asked <= jobs, asked - jobs


def test_every_metric_fedmq_serves_is_documented() -> None:
    documented = set(re.findall(r"`(fedmq_\w+)", OPERATIONS.read_text()))

    assert exposed_names() - documented == set(), "serve these but docs/operations.md omits them"
    assert documented - exposed_names() == set(), "docs/operations.md lists what nothing serves"
