"""Least-privilege regexes: what each role's permissions match, the way RabbitMQ matches them."""

from __future__ import annotations

import pytest

from broker.names import Names
from broker.permissions import aggregator_permissions, exactly, worker_permissions

NAMES = Names("fed-1")


@pytest.mark.parametrize(
    ("kind", "resource", "allowed"),
    [
        ("write", "fed-1.inbox", True),
        ("read", "fed-1.models.w1", True),
        ("configure", "fed-1.models.w1", False),  # queue arguments are the provisioner's
        ("configure", "fed-1.partition.0", False),  # a claim could be squatted
        ("write", "fed-1.models.w1", False),  # cannot bind its queue elsewhere
        ("read", "fed-1.models", False),  # cannot bind the inbox (or a queue) to the models
        ("write", "fed-1.models", False),  # cannot publish a model version
        ("write", "amq.default", False),  # the default exchange reaches any queue
        ("read", "fed-1.results", False),  # cannot consume others' updates
        ("read", "fed-1.inbox", False),  # cannot bind a queue of its own to the inbox
        ("read", "fed-1.models.w10", False),  # another worker's queue, despite the shared prefix
        ("configure", "fed-1.models.w2", False),
        ("configure", "fed-1.results", False),
        ("read", "fed-1xmodels", False),  # dots are literal
        ("read", "fed-1.final", True),  # peeks at the final model of a finished run
        ("write", "fed-1.final", False),  # cannot leave a final model there
        ("configure", "fed-1.aggregator", False),  # cannot squat the aggregator's lease
    ],
)
def test_a_worker_may_do_only_its_own_part(kind: str, resource: str, allowed: bool) -> None:
    assert worker_permissions(NAMES, "w1").allows(kind, resource) is allowed


@pytest.mark.parametrize(
    ("kind", "resource", "allowed"),
    [
        ("read", "fed-1.results", True),
        ("read", "fed-1.requests", True),
        ("write", "fed-1.models", True),
        ("write", "fed-1.dead", True),
        ("write", "fed-1.status", True),
        ("configure", "fed-1.results", False),  # the topology is the provisioner's
        ("configure", "fed-1.models", False),
        ("write", "fed-1.results", False),  # cannot bind results to an exchange it writes
        ("read", "fed-1.dead", False),  # cannot bind results to the dead-letter exchange
        ("read", "fed-1.inbox", False),
        ("write", "fed-1.inbox", False),  # the aggregator cannot forge updates
        ("write", "amq.default", False),
        ("read", "fed-1.models.w1", False),
        ("configure", "fed-1.models.w1", False),
        ("read", "fed-2.results", False),
        ("configure", "fed-1.aggregator", True),  # its lease: one active aggregator
        ("write", "fed-1.aggregator", False),  # so nothing can ever be routed to it
        ("read", "fed-1.aggregator", False),
        ("configure", "fed-2.aggregator", False),
        ("read", "fed-1.final", True),  # empties it when a run starts
    ],
)
def test_the_aggregator_may_run_the_federation_but_not_pose_as_a_worker(
    kind: str, resource: str, allowed: bool
) -> None:
    assert aggregator_permissions(NAMES).allows(kind, resource) is allowed


def test_worker_ids_are_escaped_so_they_match_only_themselves() -> None:
    perms = worker_permissions(Names("ns"), "a.b")

    assert perms.allows("read", "ns.models.a.b")
    assert not perms.allows("read", "ns.models.aXb")


def test_exactly_lists_each_name_once() -> None:
    assert exactly("a", "b", "a") == "^a$|^b$"


def test_the_cli_prints_the_permissions_of_a_definitions_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from fedmq.cli import main

    assert main(["broker", "permissions", "--namespace", "ns", "--vhost", "fed", "w1", "w2"]) == 0

    entries = json.loads(capsys.readouterr().out)["permissions"]
    assert [(e["user"], e["vhost"]) for e in entries] == [
        ("ns-aggregator", "fed"),
        ("w1", "fed"),
        ("w2", "fed"),
    ]
    assert entries[1]["write"] == worker_permissions(Names("ns"), "w1").write
