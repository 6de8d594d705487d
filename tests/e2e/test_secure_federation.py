"""A federation as production runs it: provisioned users, amqps:// with verification, strict
identity, revocation.

Runs on the private node of ``tests/secure_node.py`` (management API + TLS);
passwords travel only in files.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from broker.connection import AmqpSession
from broker.management import ManagementClient, segment
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.settings import BrokerSettings
from fedmq.cli import main as fedmq
from harness.procs import Federation, wait_for
from harness.secure_node import SecureNode
from schemas.codec import encode
from schemas.messages import ClientUpdate

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


@pytest.fixture
def provisioned(
    secure_node: SecureNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    """A namespace with an aggregator and workers ``<ns>-a``, ``<ns>-b``; password files and roster
    in ``tmp_path``.
    """
    ns = f"p-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("FEDMQ_MANAGEMENT_URL", secure_node.management_url)
    monkeypatch.setenv("FEDMQ_MANAGEMENT_USER", "guest")
    monkeypatch.setenv("FEDMQ_MANAGEMENT_PASSWORD", "guest")
    users = {
        f"{ns}-aggregator": ["init"],
        f"{ns}-a": ["add-worker", f"{ns}-a"],
        f"{ns}-b": ["add-worker", f"{ns}-b"],
    }
    for user, command in users.items():
        flags = [
            "--namespace",
            ns,
            "--password-file",
            str(tmp_path / f"{user}.pw"),
            "--roster-file",
            str(tmp_path / "roster.json"),
        ]
        assert fedmq(["broker", *command, *flags]) == 0
    yield ns, tmp_path
    client = ManagementClient(secure_node.management_url, "guest", "guest")
    client.request("DELETE", f"vhosts/{segment(ns)}", allow_missing=True)
    for user in users:
        client.request("DELETE", f"users/{segment(user)}", allow_missing=True)


def tls_flags(node: SecureNode, ns: str, user: str, secrets: Path) -> list[str]:
    return [
        "--amqp-url",
        f"amqps://{user}@localhost:{node.tls_port}/{ns}",
        "--amqp-password-file",
        str(secrets / f"{user}.pw"),
        "--tls-ca-file",
        str(node.ca.files.cert),
    ]


def test_a_strict_federation_over_tls_trains_refuses_forgeries_and_revokes(
    secure_node: SecureNode, provisioned: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    ns, secrets = provisioned
    a, b = f"{ns}-a", f"{ns}-b"
    fed = Federation(
        namespace=ns, amqp_url="amqp://unused@127.0.0.1:1/x", run_dir=tmp_path_factory.mktemp(ns)
    )
    try:
        # Workers first: a provisioned worker cannot declare the topology, so it must wait for the
        # aggregator's.
        worker_b = fed.worker(
            1,
            *tls_flags(secure_node, ns, b, secrets),
            "--delay",
            "0.1",
            num_partitions=2,
            worker_id=b,
        )
        fed.worker(
            0,
            *tls_flags(secure_node, ns, a, secrets),
            "--delay",
            "0.1",
            num_partitions=2,
            worker_id=a,
        )
        agg = fed.aggregator(
            *tls_flags(secure_node, ns, f"{ns}-aggregator", secrets),
            # No --identity: strict is the default for a provisioned user.
            "--roster-file",
            str(secrets / "roster.json"),
            "--max-versions",
            "100",
            num_partitions=2,
        )
        wait_for(lambda: fed.latest_version() >= 20, 180, "version 20 over TLS")

        # Worker a's credentials, used by hand: a forged worker id, and no user_id at all.
        password = (secrets / f"{a}.pw").read_text().strip()
        url = f"amqps://{a}:{password}@localhost:{secure_node.tls_port}/{ns}"
        settings = BrokerSettings(
            amqp_url=url, namespace=ns, tls_ca_file=str(secure_node.ca.files.cert)
        )
        forged = ClientUpdate(
            update_id="forged-0001",
            worker_id=b,
            base_version=0,
            num_examples=1,
            update_kind="weights",
            train_seconds=0.0,
            arrays={"W": np.zeros((64, 10), np.float32), "b": np.zeros(10, np.float32)},
        )
        with AmqpSession(settings) as session:
            session.publish(
                Names(ns).inbox_exchange,
                UPDATE_KEY,
                encode(forged),
                update_properties("forged-0001", a, 0),
            )
            session.publish(
                Names(ns).inbox_exchange,
                UPDATE_KEY,
                encode(forged),
                update_properties("anonymous-01", None, 0),
            )

        assert (
            fedmq(
                [
                    "broker",
                    "remove-worker",
                    b,
                    "--namespace",
                    ns,
                    "--roster-file",
                    str(secrets / "roster.json"),
                ]
            )
            == 0
        )
        assert worker_b.wait(timeout=60) != 0, "a revoked worker must not carry on"
        assert agg.wait(timeout=180) == 0, fed.log("aggregator.log")[-3000:]
    finally:
        fed.close()

    rejected = {e["message_id"]: e["reason"] for e in fed.audit() if e["event"] == "rejected"}
    assert rejected["forged-0001"] == "identity-mismatch"
    assert rejected["anonymous-01"] == "no-user-id"
    applied = [e for e in fed.audit() if e["event"] == "applied"]
    assert {e["worker_id"] for e in applied} == {a, b}
    summary = fed.summary()
    assert summary is not None and summary["version"] >= 100 and summary["accuracy"] > 0.8
    assert json.loads((secrets / "roster.json").read_text()) == {"active": [a], "revoked": [b]}
    assert (
        "access refused" in fed.log(f"{b}.log").lower() or "revoked" in fed.log(f"{b}.log").lower()
    )
