"""Topology abuse, tried as an attacker would, against what RabbitMQ enforces.

One federation is provisioned with ``fedmq broker init | add-worker`` on the
private node (``harness/secure_node.py``) for the whole module; every probe
opens its own connection with a provisioned user's credentials and must be
refused by the broker (403), whatever fedmq's own code would do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.errors import AccessRefused
from broker.management import ManagementClient, segment
from broker.names import BROADCAST_KEY, UPDATE_KEY, Names, worker_key
from broker.properties import model_properties, update_properties
from broker.settings import BrokerSettings
from broker.topology import attach_worker_queue, verify_topology
from broker.translate import translated
from fedmq.cli import main as fedmq
from harness.procs import pump_until
from harness.secure_node import SecureNode
from runtime.eventlog import EventLog
from schemas.codec import Limits, encode
from schemas.messages import ModelVersion
from worker.inbox import ModelInbox
from worker.metrics import WorkerMetrics
from worker.settings import WorkerSettings

pytestmark = pytest.mark.broker

Probe = Callable[[AmqpSession], object]


@dataclass
class Fed:
    node: SecureNode
    names: Names
    passwords: dict[str, str]

    @property
    def aggregator(self) -> str:
        return f"{self.names.namespace}-aggregator"

    def worker(self, letter: str) -> str:
        return f"{self.names.namespace}-{letter}"

    def session(self, user: str) -> AmqpSession:
        url = self.node.amqp_url(user, self.passwords[user], self.names.namespace)
        settings = BrokerSettings(amqp_url=url, namespace=self.names.namespace, connect_attempts=1)
        return AmqpSession(settings, name=f"probe-{user}")


@pytest.fixture(scope="module")
def fed(secure_node: SecureNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    ns = f"lp-{uuid.uuid4().hex[:8]}"
    secrets = tmp_path_factory.mktemp(ns)
    env = {
        "FEDMQ_MANAGEMENT_URL": secure_node.management_url,
        "FEDMQ_MANAGEMENT_USER": "guest",
        "FEDMQ_MANAGEMENT_PASSWORD": "guest",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        passwords = _provision(ns, secrets)
        yield Fed(secure_node, Names(ns), passwords)
    client = ManagementClient(secure_node.management_url, "guest", "guest")
    client.request("DELETE", f"vhosts/{segment(ns)}", allow_missing=True)
    for user in passwords:
        client.request("DELETE", f"users/{segment(user)}", allow_missing=True)


def _provision(ns: str, secrets: Path) -> dict[str, str]:
    commands = {
        f"{ns}-aggregator": ["init"],
        f"{ns}-a": ["add-worker", f"{ns}-a"],
        f"{ns}-b": ["add-worker", f"{ns}-b"],
    }
    passwords = {}
    for user, command in commands.items():
        secret = secrets / f"{user}.pw"
        assert fedmq(["broker", *command, "--namespace", ns, "--password-file", str(secret)]) == 0
        passwords[user] = secret.read_text().strip()
    return passwords


def refused(fed: Fed, user: str, probe: Probe) -> None:
    with fed.session(user) as session:
        with pytest.raises(AccessRefused):
            with translated("probe"):
                probe(session)


def _exchange_bind(destination: str, source: str, key: str) -> Probe:
    return lambda s: s._ch().exchange_bind(destination, source, routing_key=key)


def worker_probes(names: Names, me: str, other: str) -> dict[str, Probe]:
    own = names.worker_queue(me)
    return {
        # every model version dead-letters into the results queue, and outlives a revocation
        "declare-dead-lettering-queue": lambda s: s.declare_queue(
            own,
            durable=True,
            arguments={
                "x-message-ttl": 1,
                "x-dead-letter-exchange": names.inbox_exchange,
                "x-dead-letter-routing-key": UPDATE_KEY,
            },
        ),
        "bind-inbox-to-models": _exchange_bind(names.inbox_exchange, names.models_exchange, "#"),
        "bind-models-to-inbox": _exchange_bind(names.models_exchange, names.inbox_exchange, "#"),
        "declare-exchange-named-like-its-queue": lambda s: s.declare_exchange(own, "fanout"),
        "squat-partition-claim": lambda s: s.declare_queue(names.partition_claim(0), durable=True),
        "bind-own-queue-to-another-workers-key": lambda s: s.bind_queue(
            own, names.models_exchange, worker_key(other)
        ),
        "delete-own-queue": lambda s: s.delete_queue(own),
        "consume-another-workers-queue": lambda s: s.consume(
            names.worker_queue(other), lambda d: None
        ),
        "publish-a-model": lambda s: s.publish(
            names.models_exchange, BROADCAST_KEY, b"x", model_properties(1), mandatory=False
        ),
    }


def aggregator_probes(names: Names) -> dict[str, Probe]:
    return {
        # with this binding, every dead letter the aggregator publishes lands in results
        "bind-results-to-dead": lambda s: s.bind_queue(names.results_queue, names.dead_exchange),
        "bind-results-to-status": lambda s: s.bind_queue(
            names.results_queue, names.status_exchange
        ),
        "bind-inbox-to-models": _exchange_bind(names.inbox_exchange, names.models_exchange, "#"),
        "delete-results": lambda s: s.delete_queue(names.results_queue),
        "declare-a-queue": lambda s: s.declare_queue(f"{names.namespace}.results.copy"),
        "publish-to-inbox": lambda s: s.publish(
            names.inbox_exchange, UPDATE_KEY, b"x", update_properties("u", None, 0)
        ),
    }


@pytest.mark.parametrize("probe", sorted(worker_probes(Names("x"), "a", "b")))
def test_a_worker_cannot_abuse_the_topology(fed: Fed, probe: str) -> None:
    probes = worker_probes(fed.names, fed.worker("a"), fed.worker("b"))

    refused(fed, fed.worker("a"), probes[probe])


@pytest.mark.parametrize("probe", sorted(aggregator_probes(Names("x"))))
def test_the_runtime_aggregator_cannot_rewire_or_forge_into_results(fed: Fed, probe: str) -> None:
    refused(fed, fed.aggregator, aggregator_probes(fed.names)[probe])


def test_provisioned_roles_still_do_their_part(fed: Fed) -> None:
    names, a = fed.names, fed.worker("a")
    got: list[Delivery] = []
    with fed.session(a) as worker, fed.session(fed.aggregator) as aggregator:
        verify_topology(aggregator, names)
        worker.consume(attach_worker_queue(worker, names, a), got.append, exclusive=True)
        aggregator.publish(names.models_exchange, worker_key(a), b"model", model_properties(1))
        pump_until(worker, lambda: got, 10, "the model on a's own queue")
        worker.publish(names.inbox_exchange, UPDATE_KEY, b"u", update_properties("u-1", a, 0))
        updates: list[Delivery] = []
        aggregator.consume(names.results_queue, updates.append)
        pump_until(aggregator, lambda: updates, 10, "a's update")

    assert got[0].body == b"model"
    assert updates[0].properties.user_id == a


def test_removing_a_worker_deletes_its_model_queue(fed: Fed) -> None:
    names, c = fed.names, f"{fed.names.namespace}-c"
    assert fedmq(["broker", "add-worker", c, "--namespace", names.namespace]) == 0
    client = ManagementClient(fed.node.management_url, "guest", "guest")
    path = f"queues/{segment(names.namespace)}/{segment(names.worker_queue(c))}"
    assert client.request("GET", path, allow_missing=True) is not None

    assert fedmq(["broker", "remove-worker", c, "--namespace", names.namespace]) == 0

    assert client.request("GET", path, allow_missing=True) is None


def test_init_warns_about_the_default_guest_administrator_and_will_not_lock_itself_out(
    fed: Fed, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = f"{fed.names.namespace}-g"
    client = ManagementClient(fed.node.management_url, "guest", "guest")
    try:
        assert fedmq(["broker", "init", "--namespace", ns]) == 0
        warned = capsys.readouterr().err
        assert fedmq(["broker", "init", "--namespace", ns, "--remove-guest"]) == 2
        refusal = capsys.readouterr().err
    finally:
        client.request("DELETE", f"vhosts/{segment(ns)}", allow_missing=True)
        client.request("DELETE", f"users/{segment(ns)}-aggregator", allow_missing=True)

    assert "warning" in warned and "'guest'" in warned
    assert refusal.count("\n") == 1 and "refusing to remove 'guest'" in refusal
    assert client.request("GET", "users/guest") is not None


def test_a_model_from_anyone_but_the_aggregator_is_refused_or_ignored(fed: Fed) -> None:
    """A user who can write the models exchange (a misconfiguration) cannot pose as the aggregator,
    and what it publishes under its own name, a worker ignores."""
    names, a = fed.names, fed.worker("a")
    rogue = f"{names.namespace}-rogue"
    client = ManagementClient(fed.node.management_url, "guest", "guest")
    client.request("PUT", f"users/{rogue}", {"password": "rogue-password", "tags": ""})
    body = {"configure": "", "write": f"^{names.namespace}\\.models$", "read": ""}
    client.request("PUT", f"permissions/{segment(names.namespace)}/{rogue}", body)
    fed.passwords[rogue] = "rogue-password"
    url = fed.node.amqp_url(a, fed.passwords[a], names.namespace)
    worker = WorkerSettings(amqp_url=url, namespace=names.namespace)
    box = ModelInbox(
        limits=Limits(),
        events=EventLog(None),
        metrics=WorkerMetrics(),
        sender=worker.model_sender(),
    )
    final = _model(7, final=True)
    try:
        with fed.session(rogue) as session:
            with pytest.raises(AccessRefused):  # the broker checks user_id against the connection
                session.publish(
                    names.models_exchange, BROADCAST_KEY, final, model_properties(7, fed.aggregator)
                )
        with fed.session(rogue) as session:
            session.publish(names.models_exchange, worker_key(a), final, model_properties(7, rogue))
        with fed.session(a) as session:
            got: list[Delivery] = []
            session.consume(attach_worker_queue(session, names, a), got.append, exclusive=True)
            pump_until(session, lambda: got, 10, "the rogue's model")
            for d in got:
                box.deliver(d.body, d.properties.content_type, d.properties.user_id)
    finally:
        client.request("DELETE", f"users/{rogue}", allow_missing=True)

    assert worker.model_sender() == fed.aggregator
    assert box.refused == {rogue: 1} and not box.final and box.latest is None


def _model(version: int, *, final: bool) -> bytes:
    arrays = {"W": np.zeros((2, 2), np.float32)}
    return encode(
        ModelVersion(run_id="r", version=version, created_at=0.0, final=final, arrays=arrays)
    )


def test_a_monitor_reads_the_status_and_dead_letters_and_nothing_else(
    fed: Fed, tmp_path: Path
) -> None:
    names, monitor = fed.names, f"{fed.names.namespace}-monitor"
    secret = tmp_path / "monitor.pw"
    add = ["broker", "add-monitor", monitor, "--namespace", names.namespace]
    assert fedmq([*add, "--password-file", str(secret)]) == 0
    client = ManagementClient(fed.node.management_url, "guest", "guest")
    user = client.request("GET", f"users/{segment(monitor)}")
    try:
        fed.passwords[monitor] = secret.read_text().strip()
        with fed.session(monitor) as session:
            session.peek(names.status_queue, 1)
            session.peek(names.dead_queue, 1)
        for probe in (
            lambda s: s.consume(names.results_queue, lambda d: None),
            lambda s: s.publish(
                names.inbox_exchange, UPDATE_KEY, b"x", update_properties("u", None, 0)
            ),
            lambda s: s.declare_queue(f"{names.namespace}.mine"),
        ):
            refused(fed, monitor, probe)
    finally:
        assert fedmq(["broker", "remove-worker", monitor, "--namespace", names.namespace]) == 0

    assert user["tags"] == ["monitoring"]
