"""docker-compose.cluster.yml over docker-compose.yml: three members forming one cluster, every
queue replicated on all three, and every fedmq service given all three addresses.

Checked as tests/unit/test_compose.py checks the base file (no Docker): the merged file
is validated against the Compose Specification's schema, everything it names exists, each
fedmq service's address list is accepted by its settings model, and the cluster's
definitions are what ``fedmq broker definitions --quorum-group-size 3`` prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aggregator.settings import AggregatorSettings
from fedmq.status.settings import StatusSettings
from harness.compose import TEST_SECRETS, load, mounts, reference_errors, schema_errors
from harness.compose_overlay import merge
from harness.compose_tls import generate
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "rabbitmq" / "definitions.cluster.template.json"
MEMBERS = ["rabbitmq", "rabbitmq-2", "rabbitmq-3"]
FEDMQ = {
    "aggregator": AggregatorSettings,
    "aggregator-standby": AggregatorSettings,
    **{f"worker-{i}": WorkerSettings for i in range(8)},
    "status": StatusSettings,
}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tls = generate(tmp_path_factory.mktemp("cluster") / "tls")
    env = {**TEST_SECRETS, "FEDMQ_TLS_DIR": str(tls)}
    base = load(ROOT / "docker-compose.yml", env)
    overlay = load(ROOT / "docker-compose.cluster.yml", env)
    merged: dict[str, Any] = merge(base, {k: v for k, v in overlay.items() if k[:2] != "x-"})
    return merged


def test_the_merged_file_is_valid_compose_and_names_only_what_exists(
    config: dict[str, Any],
) -> None:
    assert schema_errors(config) == ""
    assert reference_errors(config, ROOT) == []


def test_three_members_share_one_cookie_one_peer_list_and_the_replicated_definitions(
    config: dict[str, Any],
) -> None:
    peers = (ROOT / "deploy" / "rabbitmq" / "cluster.conf").read_text()
    data = set()
    for member in MEMBERS:
        svc = config["services"][member]
        env = svc["environment"]
        assert env["FEDMQ_ERLANG_COOKIE"] == "cookie-1"
        assert env["FEDMQ_DEFINITIONS_TEMPLATE"] == TEMPLATE.name
        assert svc["hostname"] == member and f"rabbit@{member}" in peers
        mounted = mounts(svc)
        assert "/etc/rabbitmq/conf.d/40-fedmq-cluster.conf" in mounted
        data.add(mounted["/var/lib/rabbitmq"])
    assert len(data) == 3  # each member its own data


@pytest.mark.parametrize("service", sorted(FEDMQ))
def test_every_fedmq_service_gets_every_member_and_replicated_queues(
    config: dict[str, Any], service: str
) -> None:
    env = config["services"][service]["environment"]

    settings = FEDMQ[service](
        amqp_url=env["AMQP_URL"], quorum_group_size=env["FEDMQ_QUORUM_GROUP_SIZE"]
    )

    hosts = sorted(url.split("@")[1].split(":")[0] for url in settings.amqp_urls)
    assert hosts == MEMBERS and settings.quorum_group_size == 3
    depends = config["services"][service]["depends_on"]
    assert all(depends[m]["condition"] == "service_healthy" for m in MEMBERS)


def test_the_cluster_definitions_are_what_fedmq_broker_definitions_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fedmq.cli import main

    workers = [f"fedmq-worker-{i}" for i in range(8)]
    argv = ["broker", "definitions", "--namespace", "fedmq", "--vhost", "fedmq"]
    assert main([*argv, "--quorum-group-size", "3", *workers]) == 0

    printed = capsys.readouterr().out
    assert printed == TEMPLATE.read_text()
    queues = json.loads(printed)["queues"]
    assert all(q["arguments"]["x-queue-type"] == "quorum" for q in queues)
    assert all(q["arguments"]["x-quorum-initial-group-size"] == 3 for q in queues)


def test_the_overlay_replaces_values_and_merges_volumes_by_target() -> None:
    base = {"services": {"s": {"environment": {"A": "1", "B": "2"}, "volumes": ["x:/d", "./c:/e"]}}}
    overlay = {"services": {"s": {"environment": {"B": "3"}, "volumes": ["y:/d", "./f:/g"]}}}

    merged = merge(base, overlay)

    assert merged["services"]["s"] == {
        "environment": {"A": "1", "B": "3"},
        "volumes": ["y:/d", "./c:/e", "./f:/g"],
    }
