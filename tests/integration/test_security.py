"""Least privilege, identity, revocation and TLS against a private RabbitMQ node (see
tests/secure_node.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.connection import AmqpSession
from broker.delivery import Delivery, Properties
from broker.errors import AccessRefused, BrokerError, BrokerUnavailable, ConnectionLost
from broker.management import ManagementClient, segment
from broker.names import BROADCAST_KEY, UPDATE_KEY, Names
from broker.properties import update_properties
from broker.provision import ProvisionError, add_worker
from broker.settings import BrokerSettings
from broker.topology import attach_worker_queue, verify_topology
from fedmq.cli import main as fedmq
from harness.procs import pump_until, wait_for
from harness.secure_node import SecureNode
from harness.tls import CertificateAuthority

pytestmark = pytest.mark.broker


@dataclass
class Provisioned:
    """A federation provisioned with the CLI: its vhost, aggregator and two workers (passwords in
    files).
    """

    node: SecureNode
    namespace: str
    aggregator: str
    passwords: dict[str, str]

    def settings(
        self, user: str, *, password: str | None = None, **extra: object
    ) -> BrokerSettings:
        url = self.node.amqp_url(user, password or self.passwords[user], self.namespace)
        return BrokerSettings(amqp_url=url, namespace=self.namespace, connect_attempts=1, **extra)  # type: ignore[arg-type]

    @property
    def names(self) -> Names:
        return Names(self.namespace)


def admin(node: SecureNode) -> ManagementClient:
    return ManagementClient(node.management_url, "guest", "guest")


@pytest.fixture
def provisioned(
    secure_node: SecureNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Provisioned]:
    ns = f"s-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("FEDMQ_MANAGEMENT_URL", secure_node.management_url)
    monkeypatch.setenv("FEDMQ_MANAGEMENT_USER", "guest")
    monkeypatch.setenv("FEDMQ_MANAGEMENT_PASSWORD", "guest")
    users = {
        f"{ns}-aggregator": ["init"],
        f"{ns}-a": ["add-worker", f"{ns}-a"],
        f"{ns}-b": ["add-worker", f"{ns}-b"],
    }
    passwords = {}
    for user, command in users.items():
        secret = tmp_path / f"{user}.password"
        assert (
            fedmq(
                [
                    "broker",
                    *command,
                    "--namespace",
                    ns,
                    "--password-file",
                    str(secret),
                    "--roster-file",
                    str(tmp_path / "roster.json"),
                ]
            )
            == 0
        )
        passwords[user] = secret.read_text().strip()
    yield Provisioned(secure_node, ns, f"{ns}-aggregator", passwords)
    client = admin(secure_node)
    client.request("DELETE", f"vhosts/{segment(ns)}", allow_missing=True)
    for user in users:
        client.request("DELETE", f"users/{segment(user)}", allow_missing=True)


@pytest.fixture
def topology(provisioned: Provisioned) -> Provisioned:
    """``fedmq broker init`` declared the topology (nobody at run time may)."""
    with AmqpSession(provisioned.settings(provisioned.aggregator)) as session:
        verify_topology(session, provisioned.names)
    return provisioned


def refused(settings: BrokerSettings, action) -> str:  # type: ignore[no-untyped-def]
    """Run ``action(session)`` and return the AccessRefused message it must raise."""
    with AmqpSession(settings) as session:
        with pytest.raises(AccessRefused) as info:
            action(session)
    return str(info.value)


def test_a_worker_does_its_part_and_the_aggregator_sees_its_validated_user(
    topology: Provisioned,
) -> None:
    fed, worker = topology, f"{topology.namespace}-a"
    with AmqpSession(fed.settings(worker)) as session:
        attach_worker_queue(session, fed.names, worker)
        session.publish(
            fed.names.inbox_exchange,
            UPDATE_KEY,
            b"x",
            update_properties("u-1", session.username, 0),
        )

    got: list[Delivery] = []
    with AmqpSession(fed.settings(fed.aggregator)) as session:
        session.consume(fed.names.results_queue, got.append)
        pump_until(session, lambda: got, 10, "the update")
    assert got[0].properties.user_id == worker


def test_a_worker_cannot_impersonate_another(topology: Provisioned) -> None:
    fed = topology
    props = update_properties("u-1", f"{fed.namespace}-b", 0)

    message = refused(
        fed.settings(f"{fed.namespace}-a"),
        lambda s: s.publish(fed.names.inbox_exchange, UPDATE_KEY, b"x", props),
    )

    assert "user_id" in message


@pytest.mark.parametrize(
    "attempt",
    [
        "consume-results",
        "publish-model",
        "publish-default-exchange",
        "bind-to-inbox",
        "read-other-worker-queue",
        "declare-shared-queue",
    ],
)
def test_a_worker_cannot_escalate_its_privileges(topology: Provisioned, attempt: str) -> None:
    fed, names = topology, topology.names
    a, b = f"{fed.namespace}-a", f"{fed.namespace}-b"
    actions = {
        "consume-results": lambda s: s.consume(names.results_queue, lambda d: None),
        "publish-model": lambda s: s.publish(
            names.models_exchange,
            BROADCAST_KEY,
            b"evil",
            Properties(persistent=False),
            mandatory=False,
        ),
        "publish-default-exchange": lambda s: s.publish(
            "", names.results_queue, b"x", Properties(user_id=a)
        ),
        "bind-to-inbox": lambda s: s.bind_queue(
            attach_worker_queue(s, names, a), names.inbox_exchange, UPDATE_KEY
        ),
        "read-other-worker-queue": lambda s: s.consume(names.worker_queue(b), lambda d: None),
        "declare-shared-queue": lambda s: s.declare_queue(
            names.results_queue, durable=True, arguments={"x-queue-type": "quorum"}
        ),
    }
    with AmqpSession(fed.settings(b)) as other:  # b's model queue exists while b is connected
        attach_worker_queue(other, names, b)
        message = refused(fed.settings(a), lambda s: _translated(actions[attempt], s))
    assert "access" in message.lower() or "refused" in message.lower()


def _translated(action, session: AmqpSession) -> None:  # type: ignore[no-untyped-def]
    from broker.translate import translated

    with translated("attempt"):
        action(session)


def test_the_aggregator_cannot_forge_updates(topology: Provisioned) -> None:
    fed = topology

    refused(
        fed.settings(fed.aggregator),
        lambda s: s.publish(fed.names.inbox_exchange, UPDATE_KEY, b"x", Properties()),
    )


def test_a_removed_worker_is_disconnected_and_cannot_come_back(topology: Provisioned) -> None:
    fed, worker = topology, f"{topology.namespace}-a"
    session = AmqpSession(fed.settings(worker))
    session.open()
    attach_worker_queue(session, fed.names, worker)
    wait_for(
        lambda: any(
            c.get("user") == worker for c in admin(fed.node).request("GET", "connections") or []
        ),
        20,
        "the connection to be listed",
    )

    assert fedmq(["broker", "remove-worker", worker, "--namespace", fed.namespace]) == 0

    with pytest.raises(ConnectionLost):
        pump_until(session, lambda: False, 10, "the broker to close the connection")
    with pytest.raises(AccessRefused):
        AmqpSession(fed.settings(worker)).open()


def test_an_unprovisioned_user_cannot_connect(provisioned: Provisioned) -> None:
    with pytest.raises(AccessRefused):
        AmqpSession(provisioned.settings("nobody", password="guess")).open()


def test_guest_has_no_access_to_a_federation_vhost(provisioned: Provisioned) -> None:
    with pytest.raises(AccessRefused):
        AmqpSession(provisioned.settings("guest", password="guest")).open()


def test_provisioning_never_overwrites_or_deletes_a_privileged_user(
    provisioned: Provisioned,
) -> None:
    fed = provisioned
    client = admin(fed.node)

    with pytest.raises(ProvisionError):
        add_worker(client, _federation(fed), "guest", "pw")
    assert fedmq(["broker", "remove-worker", "guest", "--namespace", fed.namespace]) == 2
    assert client.request("GET", "users/guest")["tags"]


def _federation(fed: Provisioned):  # type: ignore[no-untyped-def]
    from broker.provision import Federation

    return Federation(fed.names, fed.namespace)


def test_amqps_with_verification_connects(provisioned: Provisioned) -> None:
    fed, worker = provisioned, f"{provisioned.namespace}-a"
    url = fed.node.amqps_url(worker, fed.passwords[worker], fed.namespace)
    settings = BrokerSettings(
        amqp_url=url,
        namespace=fed.namespace,
        connect_attempts=1,
        tls_ca_file=str(fed.node.ca.files.cert),
    )

    with AmqpSession(settings) as session:
        assert session.is_open


def test_amqps_with_a_client_certificate_connects(provisioned: Provisioned) -> None:
    fed, worker = provisioned, f"{provisioned.namespace}-a"
    client = fed.node.client_cert(worker)
    url = fed.node.amqps_url(worker, fed.passwords[worker], fed.namespace, host="127.0.0.1")
    settings = BrokerSettings(
        amqp_url=url,
        namespace=fed.namespace,
        connect_attempts=1,
        tls_ca_file=str(fed.node.ca.files.cert),
        tls_cert_file=str(client.cert),
        tls_key_file=str(client.key),
    )

    with AmqpSession(settings) as session:
        assert session.is_open


def test_amqps_refuses_a_broker_certificate_from_an_unknown_ca(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    fed, worker = provisioned, f"{provisioned.namespace}-a"
    other_ca = CertificateAuthority(tmp_path / "other", name="someone else")
    url = fed.node.amqps_url(worker, fed.passwords[worker], fed.namespace)
    settings = BrokerSettings(
        amqp_url=url,
        namespace=fed.namespace,
        connect_attempts=1,
        tls_ca_file=str(other_ca.files.cert),
    )

    with pytest.raises(BrokerUnavailable) as info:
        AmqpSession(settings).open()
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_the_broker_refuses_a_client_certificate_from_an_unknown_ca(
    provisioned: Provisioned, tmp_path: Path
) -> None:
    fed, worker = provisioned, f"{provisioned.namespace}-a"
    rogue = CertificateAuthority(tmp_path / "rogue", name="rogue CA").issue(worker, server=False)
    url = fed.node.amqps_url(worker, fed.passwords[worker], fed.namespace)
    settings = BrokerSettings(
        amqp_url=url,
        namespace=fed.namespace,
        connect_attempts=1,
        tls_ca_file=str(fed.node.ca.files.cert),
        tls_cert_file=str(rogue.cert),
        tls_key_file=str(rogue.key),
    )

    with pytest.raises(BrokerError):
        AmqpSession(settings).open()
