"""The container configuration on a real (private) node: definitions rendered from secrets, no
guest,
least-privilege users that can still run a federation, management API and Prometheus endpoints.

The node is the installed RabbitMQ (3.10 here; the compose file pulls 4.1) started with
deploy/rabbitmq/fedmq.conf and the definitions that deploy/rabbitmq/render-definitions.sh
writes, plus the management and Prometheus plugins on spare loopback ports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.connection import AmqpSession
from broker.errors import AccessRefused
from broker.settings import BrokerSettings
from harness.procs import Federation, wait_for
from harness.rabbit_node import RabbitNode, free_port

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq"
PASSWORDS = {
    "FEDMQ_ADMIN_PASSWORD": "admin-password-1",
    "FEDMQ_AGGREGATOR_PASSWORD": "aggregator-password-1",
    "FEDMQ_MONITOR_PASSWORD": "monitor-password-1",
    **{f"FEDMQ_WORKER_{i}_PASSWORD": f"worker-{i}-password-1" for i in range(8)},
}


class DeployNode(RabbitNode):
    management_port: int = 0
    prometheus_port: int = 0

    def url(self, user: str) -> str:
        password = PASSWORDS[f"FEDMQ_{user.upper().replace('-', '_')}_PASSWORD"]
        return f"amqp://fedmq-{user}:{password}@127.0.0.1:{self.port}/fedmq"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployNode]:
    base = tmp_path_factory.mktemp("deploy-node")
    definitions = base / "definitions.json"
    subprocess.run(
        [
            "bash",
            str(DEPLOY / "render-definitions.sh"),
            str(DEPLOY / "definitions.template.json"),
            str(definitions),
        ],
        check=True,
        env={**os.environ, **PASSWORDS},
        timeout=30,
    )
    management, prometheus = free_port(), free_port()
    config = (
        (DEPLOY / "fedmq.conf").read_text().replace("/run/fedmq/definitions.json", str(definitions))
    )
    config += (
        f"\nmanagement.tcp.port = {management}\nmanagement.tcp.ip = 127.0.0.1\n"
        f"prometheus.tcp.port = {prometheus}\nprometheus.tcp.ip = 127.0.0.1\n"
    )
    plugins = tuple(DEPLOY.joinpath("enabled_plugins").read_text().strip().strip("[].").split(","))
    rabbit = DeployNode(base=base / "node", extra_config=config, plugins=plugins)
    rabbit.management_port, rabbit.prometheus_port = management, prometheus
    with rabbit.running():
        yield rabbit


def test_the_rendered_definitions_leave_no_guest_account(node: DeployNode) -> None:
    guest = BrokerSettings(
        amqp_url=f"amqp://guest:guest@127.0.0.1:{node.port}/%2F", connect_attempts=1
    )

    with pytest.raises(AccessRefused):
        AmqpSession(guest).open()
    with AmqpSession(BrokerSettings(amqp_url=node.url("admin"), connect_attempts=1)) as admin:
        assert admin.is_open


def fedmq_status(url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fedmq",
            "status",
            "--amqp-url",
            url,
            "--namespace",
            "fedmq",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_a_federation_runs_with_the_container_users_and_is_observable(
    node: DeployNode, tmp_path: Path
) -> None:
    fed = Federation(namespace="fedmq", amqp_url=node.url("aggregator"), run_dir=tmp_path)
    metrics_port = free_port()
    workers = [f"fedmq-worker-{i}" for i in range(3)]
    try:
        for i, user in enumerate(workers):  # started before the aggregator: the topology exists
            fed.worker(
                i,
                "--amqp-url",
                node.url(f"worker-{i}"),
                "--delay",
                "0.02",
                num_partitions=3,
                worker_id=user,
            )
        agg = fed.aggregator(
            "--max-seconds", "120", "--metrics-port", str(metrics_port), num_partitions=3
        )
        wait_for(
            lambda: fed.latest_version() >= 30,
            90,
            "version 30 from workers running as fedmq-worker-<i>",
        )
        management = f"http://127.0.0.1:{node.management_port}"
        seen: list[dict[str, Any]] = []

        def status_with_stats() -> dict[str, Any] | None:
            out = fedmq_status(node.url("monitor"), "--json", "--management-url", management)
            seen.append(json.loads(out.stdout))
            # the management API's statistics arrive every few seconds
            return seen[-1] if seen[-1]["queues"]["shared"][0]["consumers"] else None

        try:
            status = wait_for(status_with_stats, 60, "queue statistics from the management API")
        except AssertionError:
            raise AssertionError(f"last status: {seen[-1:]}") from None
        health = fedmq_status(
            node.url("aggregator"),
            "--max-age",
            "30",
            "--management-url",
            "off",
            "--dead-sample",
            "0",
        )
        aggregator_metrics = get(f"http://127.0.0.1:{metrics_port}/metrics")
        broker_metrics = get(f"http://127.0.0.1:{node.prometheus_port}/metrics/per-object")

        agg.send_signal(signal.SIGTERM)
        assert agg.wait(timeout=10) == 0, fed.log("aggregator.log")[-3000:]
    finally:
        fed.close()

    assert status["queues"]["source"] == "management"
    assert (
        status["queues"]["shared"][0]["queue"] == "fedmq.results"
        and status["queues"]["shared"][0]["consumers"] == 1
    )
    assert status["aggregator"]["num_partitions"] == 3
    assert health.returncode == 0, health.stdout + health.stderr
    assert (
        "fedmq_updates_applied_total" in aggregator_metrics
        and "fedmq_model_version" in aggregator_metrics
    )
    assert 'queue="fedmq.results"' in broker_metrics
    applied = [e for e in fed.audit() if e["event"] == "applied"]
    assert {e["worker_id"] for e in applied} == set(workers)  # strict identity: id = user
    partitions = {
        w: {e["partition"] for e in fed.worker_events(w) if e["event"] == "confirmed"}
        for w in workers
    }
    assert partitions == {w: {i} for i, w in enumerate(workers)}, partitions


def test_the_monitor_reads_reports_and_nothing_else(node: DeployNode) -> None:
    monitor = BrokerSettings(amqp_url=node.url("monitor"), connect_attempts=1)

    with AmqpSession(monitor) as session:
        session.peek("fedmq.status", 1)
        with pytest.raises(AccessRefused):
            session.consume("fedmq.results", lambda d: None)
