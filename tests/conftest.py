"""Shared fixtures. Tests that need RabbitMQ fail (never skip) when it is unreachable."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from broker.connection import AmqpSession
from broker.errors import BrokerError
from broker.names import Names
from broker.settings import BrokerSettings
from broker.topology import delete_topology

if TYPE_CHECKING:
    from harness.procs import Federation
    from harness.rabbit_cluster import RabbitCluster
    from harness.rabbit_node import RabbitNode
    from harness.secure_node import SecureNode

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """The broker URL, after checking the broker answers (a failure, not a skip, if not)."""
    settings = BrokerSettings(amqp_url=AMQP_URL, connect_attempts=3)
    try:
        with AmqpSession(settings, name="fedmq-tests"):
            pass
    except BrokerError as exc:
        pytest.fail(
            f"RabbitMQ is required for this test and is unreachable at {settings.masked_url()}: "
            f"{exc}"
        )
    return AMQP_URL


@pytest.fixture
def namespace(amqp_url: str) -> Iterator[str]:
    """A unique federation namespace; its queues and exchanges are deleted afterwards."""
    ns = f"t-{uuid.uuid4().hex[:10]}"
    yield ns
    settings = BrokerSettings(amqp_url=amqp_url, namespace=ns)
    with AmqpSession(settings, name="fedmq-tests-cleanup") as session:
        delete_topology(session, Names(ns))


@pytest.fixture
def broker_settings(amqp_url: str, namespace: str) -> BrokerSettings:
    return BrokerSettings(amqp_url=amqp_url, namespace=namespace, connect_attempts=3)


@pytest.fixture
def federation(
    amqp_url: str, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    """Real processes on a fresh namespace; all killed afterwards, logs kept under the temp dir."""
    from harness.procs import Federation

    fed = Federation(
        namespace=namespace, amqp_url=amqp_url, run_dir=tmp_path_factory.mktemp(namespace)
    )
    try:
        yield fed
    finally:
        fed.close()


@pytest.fixture(scope="session")
def rabbit_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    """Three private RabbitMQ nodes forming one cluster, formed once for the whole run.

    A test that kills, pauses or partitions a member brings it back before it ends.
    """
    from harness.rabbit_cluster import RabbitCluster

    with RabbitCluster(base=tmp_path_factory.mktemp("cluster")).running() as cluster:
        yield cluster


@pytest.fixture
def rabbit_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """A private RabbitMQ node for tests that restart it or reconfigure it."""
    from harness.rabbit_node import RabbitNode

    with RabbitNode(base=tmp_path_factory.mktemp("rabbit")).running() as node:
        yield node


@pytest.fixture(scope="session")
def secure_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureNode]:
    """One private node with the management API and TLS, shared by the security tests (each uses its
    own vhost).
    """
    from harness.secure_node import start_secure_node

    secure = start_secure_node(tmp_path_factory.mktemp("secure-rabbit"))
    try:
        yield secure
    finally:
        secure.node.destroy()
