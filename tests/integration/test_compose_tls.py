"""The compose file's TLS on a real (private) node: its broker config, its certificates, its
clients' settings.

The node is the installed RabbitMQ (3.10 here; the compose file pulls 4.1) started from the
config files the compose file mounts into its broker (deploy/rabbitmq/fedmq.conf and
tls.conf, with the definitions render-definitions.sh writes), the certificates made by
deploy/init-tls.sh (what deploy/init-env.sh runs) and only the container-specific parts
rewritten: the certificate paths (entrypoint.sh's copies) and the ports, which are spare
loopback ones. The services connect with their own compose environment, the CA path
mapped through their own volumes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from broker.connection import AmqpSession
from broker.errors import BrokerUnavailable
from broker.settings import BrokerSettings
from harness.compose import TEST_SECRETS, load
from harness.compose_overlay import merge
from harness.compose_tls import broker_config, config_files, generate, host_path
from harness.procs import Federation, wait_for
from harness.rabbit_node import RABBIT_BIN, RabbitNode, free_port

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "rabbitmq"


@dataclass
class ComposeNode:
    """A node configured as the compose broker, and the compose file read against its certs."""

    node: RabbitNode
    management_port: int
    #: docker-compose.yml's services (one broker, so one address per service).
    services: dict[str, dict[str, Any]]
    #: Every broker host a service dials, in docker-compose.yml or the cluster file over it.
    dialled: set[str]

    def env(self, service: str) -> dict[str, str]:
        """The service's compose environment, pointed at this node and at the host's CA file."""
        env = dict(self.services[service]["environment"])
        env["AMQP_URL"] = env["AMQP_URL"].replace(
            "@rabbitmq:5671/", f"@localhost:{self.node.port}/"
        )
        if "FEDMQ_MANAGEMENT_URL" in env:
            env["FEDMQ_MANAGEMENT_URL"] = f"https://localhost:{self.management_port}"
        ca = host_path(self.services[service], ROOT, env["FEDMQ_TLS_CA_FILE"])
        env["FEDMQ_TLS_CA_FILE"] = str(ca)
        return env

    def settings(self, service: str) -> BrokerSettings:
        env = self.env(service)
        return BrokerSettings(
            amqp_url=env["AMQP_URL"], tls_ca_file=env["FEDMQ_TLS_CA_FILE"], connect_attempts=1
        )


def _definitions(path: Path) -> Path:
    subprocess.run(
        ["bash", str(DEPLOY / "render-definitions.sh"), str(DEPLOY / "definitions.template.json")]
        + [str(path)],
        check=True,
        env={**os.environ, **TEST_SECRETS},
        timeout=30,
    )
    return path


@pytest.fixture(scope="module")
def compose_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeNode]:
    base = tmp_path_factory.mktemp("compose-tls")
    env = {**TEST_SECRETS, "FEDMQ_TLS_DIR": str(generate(base / "tls"))}
    compose = load(ROOT / "docker-compose.yml", env)
    overlay = load(ROOT / "docker-compose.cluster.yml", env)
    cluster = merge(compose, {k: v for k, v in overlay.items() if k[:2] != "x-"})
    dialled = {
        url.split("@")[1].split(":")[0]
        for config in (compose, cluster)
        for service in config["services"].values()
        for url in service.get("environment", {}).get("AMQP_URL", "").split(",")
        if "@" in url
    }
    broker = compose["services"]["rabbitmq"]
    amqps, management, prometheus = free_port(), free_port(), free_port()
    fedmq_conf = config_files(broker, ROOT)["30-fedmq.conf"].read_text()
    tls_conf = broker_config(broker, ROOT, amqps_port=amqps, management_port=management)
    # Never a plain listener here: without it RabbitMQ would listen on 5672, the shared broker's.
    assert "\nlisteners.tcp = none\n" in tls_conf
    config = "\n".join(
        [
            fedmq_conf.replace("/run/fedmq/definitions.json", str(_definitions(base / "d.json"))),
            tls_conf,
            f"prometheus.tcp.port = {prometheus}\nprometheus.tcp.ip = 127.0.0.1\n",
        ]
    )
    plugins = tuple(DEPLOY.joinpath("enabled_plugins").read_text().strip().strip("[].").split(","))
    node = RabbitNode(
        base=base / "node", port=amqps, extra_config=config, plugins=plugins, tcp_listener=False
    )
    with node.running():
        yield ComposeNode(node, management, compose["services"], dialled)


def test_a_worker_connects_with_its_compose_url_and_ca(compose_node: ComposeNode) -> None:
    with AmqpSession(compose_node.settings("worker-0")) as session:
        assert session.is_open


def test_the_broker_certificate_verifies_for_every_name_the_services_dial(
    compose_node: ComposeNode,
) -> None:
    context = ssl.create_default_context(cafile=compose_node.env("worker-0")["FEDMQ_TLS_CA_FILE"])
    versions = {}

    for host in sorted(compose_node.dialled | {"localhost"}):  # localhost: the published port
        with socket.create_connection(("127.0.0.1", compose_node.node.port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                versions[host] = tls.version()

    assert compose_node.dialled == {"rabbitmq", "rabbitmq-2", "rabbitmq-3"}
    assert set(versions.values()) == {"TLSv1.3"}, versions


def test_plain_amqp_is_refused(compose_node: ComposeNode) -> None:
    plain = compose_node.env("worker-0")["AMQP_URL"].replace("amqps://", "amqp://")

    with pytest.raises(BrokerUnavailable):
        AmqpSession(BrokerSettings(amqp_url=plain, connect_attempts=1)).open()


def test_the_node_listens_on_tls_only(compose_node: ComposeNode) -> None:
    out = subprocess.run(
        [str(RABBIT_BIN / "rabbitmq-diagnostics"), "-n", compose_node.node.node, "listeners"]
        + ["--formatter", "json"],
        env=compose_node.node._env(),  # noqa: SLF001 - the node's own environment
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    listeners = {(item["protocol"], item["port"]) for item in json.loads(out.stdout)["listeners"]}
    protocols = {protocol for protocol, _ in listeners}
    assert ("amqp/ssl", compose_node.node.port) in listeners
    assert ("https", compose_node.management_port) in listeners
    assert protocols == {"clustering", "amqp/ssl", "https", "http/prometheus"}, protocols


def test_status_reads_the_management_api_over_https_as_the_monitor(
    compose_node: ComposeNode,
) -> None:
    status = compose_node.services["status"]

    out = run_in(compose_node.env("status"), [*status["entrypoint"], "--json"])

    assert out.returncode == 0, out.stdout + out.stderr
    snapshot = json.loads(out.stdout)
    assert snapshot["queues"]["source"] == "management", snapshot["management_error"]


def run_in(env: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``fedmq ...`` (the image's entrypoint) with a service's environment."""
    assert argv[0] == "fedmq"
    return subprocess.run(
        [sys.executable, "-m", "fedmq", *argv[1:]],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_federation_trains_over_tls_and_the_aggregator_healthcheck_passes(
    compose_node: ComposeNode, tmp_path: Path
) -> None:
    aggregator = compose_node.env("aggregator")
    fed = Federation(namespace="fedmq", amqp_url=aggregator["AMQP_URL"], run_dir=tmp_path)
    ca = ["--tls-ca-file", aggregator["FEDMQ_TLS_CA_FILE"]]
    healthcheck = compose_node.services["aggregator"]["healthcheck"]["test"]
    try:
        for i in range(2):  # started before the aggregator: the definitions hold the topology
            url = compose_node.env(f"worker-{i}")["AMQP_URL"]
            fed.worker(
                i,
                "--amqp-url",
                url,
                *ca,
                "--delay",
                "0.02",
                num_partitions=2,
                worker_id=f"fedmq-worker-{i}",
            )
        agg = fed.aggregator("--max-seconds", "120", *ca, num_partitions=2)
        wait_for(lambda: fed.latest_version() >= 10, 90, "version 10 over the compose's TLS")
        health = run_in(aggregator, healthcheck[1:])
        agg.send_signal(signal.SIGTERM)
        assert agg.wait(timeout=10) == 0, fed.log("aggregator.log")[-3000:]
    finally:
        fed.close()

    assert health.returncode == 0, health.stdout + health.stderr
