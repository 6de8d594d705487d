"""Secure FedBuff with real processes on provisioned users: the model learns from buffer sums only,
through a worker's death and the aggregator's SIGKILL mid-protocol.

Runs on the private node of ``harness/secure_node.py`` (strict identity needs one broker user per
worker). Judged from the aggregator's audit (every version is one SecAgg+ buffer's sum, no update
was ever applied in the clear) and from the workers' own event files (what each contributed).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.management import ManagementClient, segment
from fedmq.cli import main as fedmq
from harness.procs import Federation, wait_for
from harness.secure_node import SecureNode

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

WORKERS = 4


@pytest.fixture
def provisioned(
    secure_node: SecureNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    """A namespace with an aggregator user and four worker users; password files in ``tmp_path``."""
    ns = f"s-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("FEDMQ_MANAGEMENT_URL", secure_node.management_url)
    monkeypatch.setenv("FEDMQ_MANAGEMENT_USER", "guest")
    monkeypatch.setenv("FEDMQ_MANAGEMENT_PASSWORD", "guest")
    users = {f"{ns}-aggregator": ["init"]}
    users |= {f"{ns}-w{i}": ["add-worker", f"{ns}-w{i}"] for i in range(WORKERS)}
    for user, command in users.items():
        flags = ["--namespace", ns, "--password-file", str(tmp_path / f"{user}.pw")]
        flags += ["--roster-file", str(tmp_path / "roster.json")]
        assert fedmq(["broker", *command, *flags]) == 0
    yield ns, tmp_path
    client = ManagementClient(secure_node.management_url, "guest", "guest")
    client.request("DELETE", f"vhosts/{segment(ns)}", allow_missing=True)
    for user in users:
        client.request("DELETE", f"users/{segment(user)}", allow_missing=True)


def login(node: SecureNode, ns: str, user: str, secrets: Path) -> list[str]:
    url = f"amqp://{user}@127.0.0.1:{node.node.port}/{ns}"
    return ["--amqp-url", url, "--amqp-password-file", str(secrets / f"{user}.pw")]


def federation_on(
    ns: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Federation, list[str]]:
    """A federation for the provisioned namespace ``ns`` (every process logs in with its own user)
    and its worker ids."""
    fed = Federation(
        namespace=ns, amqp_url="amqp://unused@127.0.0.1:1/x", run_dir=tmp_path_factory.mktemp(ns)
    )
    return fed, [f"{ns}-w{i}" for i in range(WORKERS)]


def start_workers(
    fed: Federation, node: SecureNode, secrets: Path, ids: list[str]
) -> list[subprocess.Popen[bytes]]:
    """One worker per provisioned id, each logged in as its own user."""
    return [
        fed.worker(i, *login(node, fed.namespace, w, secrets), num_partitions=WORKERS, worker_id=w)
        for i, w in enumerate(ids)
    ]


def test_secure_fedbuff_learns_from_buffer_sums_survives_a_dropout_and_a_crash(
    secure_node: SecureNode, provisioned: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    ns, secrets = provisioned
    fed, ids = federation_on(ns, tmp_path_factory)
    flags = aggregator_flags(secure_node, ns, secrets)
    try:
        agg = fed.aggregator(*flags, num_partitions=WORKERS)
        workers = start_workers(fed, secure_node, secrets, ids)
        wait_for(lambda: fed.latest_version() >= 4, 180, "four secure buffers")
        workers[3].kill()  # a dropout: the next buffers go on with the three left (K = 3)
        wait_for(lambda: fed.latest_version() >= 7, 180, "seven secure buffers")
        agg.kill()  # mid-protocol: the next buffer is open, some of its uploads in
        agg.wait(timeout=30)
        agg = fed.aggregator(*flags, num_partitions=WORKERS)  # same state directory
        assert agg.wait(timeout=240) == 0, fed.log("aggregator.log")[-3000:]
    finally:
        fed.close()
    check_the_run(fed, ids)


def aggregator_flags(secure_node: SecureNode, ns: str, secrets: Path) -> list[str]:
    return [
        *login(secure_node, ns, f"{ns}-aggregator", secrets),
        "--strategy",
        "fedbuff",
        "--secure-aggregation",
        "--buffer-size",
        "3",
        "--identity",
        "strict",
        "--roster-file",
        str(secrets / "roster.json"),
        "--secure-stage-timeout",
        "5",
        "--max-versions",
        "12",
        "--eval-every",
        "4",
    ]


def check_the_run(fed: Federation, ids: list[str]) -> None:
    audit = fed.audit()
    sums = [e for e in audit if e["event"] == "secure-buffer-sum"]
    published = [e["version"] for e in audit if e["event"] == "published" and not e["final"]]
    assert not [e for e in audit if e["event"] == "applied"], "nothing may be applied in the clear"
    # The crash: one start more, and still every version is exactly one buffer's sum. A sum audited
    # but not persisted before the kill is summed again after the restart: the same buffer, the
    # same contributors, never a second buffer for one version or one buffer for two.
    assert [e["event"] for e in audit].count("start") == 2
    assert sorted({s["version"] for s in sums}) == list(range(1, 13))
    assert sorted(set(published)) == list(range(13))
    by_version = {(s["version"], s["buffer_id"], tuple(s["contributors"])) for s in sums}
    assert len(by_version) == 12 == len({s["buffer_id"] for s in sums})
    assert all(len(s["contributors"]) >= 3 for s in sums)
    cohorts = {
        e["buffer_id"]: set(e["cohort"]) for e in audit if e["event"] == "secure-buffer-open"
    }
    assert any(len(cohorts[s["buffer_id"]]) == WORKERS for s in sums), "all four took part"
    # The killed worker cost a stage deadline, never a buffer: whether it died before or after its
    # masked input went in (its neighbours then reveal what removes its masks, or its input
    # counts), no buffer was abandoned, and once it was silent it was invited no more.
    assert not [e for e in audit if e["event"] == "secure-buffer-aborted"]
    assert all(ids[3] not in cohorts[s["buffer_id"]] for s in sums[-3:])

    # Every contribution the aggregator counted is one a worker says it masked and sent.
    # The SIGKILLed worker may die after the broker confirmed its masked input and before it
    # recorded the confirm: for it, having sent the input off (``secure-prepared``) is the witness.
    def witnessed(event: str, workers: list[str]) -> set[tuple[str, str]]:
        return {
            (e["buffer_id"], wid)
            for wid in workers
            for e in fed.worker_events(wid)
            if e["event"] == event and e["stage"] == "masked"
        }

    counted = {(s["buffer_id"], c) for s in sums for c in s["contributors"]}
    assert counted <= witnessed("secure-sent", ids[:3]) | witnessed("secure-prepared", ids[3:])
    summary = fed.summary()
    assert summary is not None and summary["version"] == 12 and summary["accuracy"] > 0.8
