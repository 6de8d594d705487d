"""``fedmq demo --secure-aggregation`` end to end: it provisions one user per process on a vhost of
its own, learns from buffer sums only, and deletes the vhost and the users afterwards.

Runs on the private node of ``harness/secure_node.py``: the machine's shared broker has no
management API, and provisioning tests never touch it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.management import ManagementClient, segment
from fedmq.cli import main as fedmq
from harness.secure_node import SecureNode

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def test_secure_demo_provisions_sums_buffers_and_cleans_up(
    secure_node: SecureNode,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FEDMQ_MANAGEMENT_URL", secure_node.management_url)
    argv = ["demo", "--secure-aggregation", "--workers", "3", "--slowdowns", "1"]
    argv += ["--max-versions", "3", "--eval-every", "3", "--run-dir", str(tmp_path)]

    code = fedmq([*argv, "--amqp-url", secure_node.node.amqp_url])

    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    rows = dict(_rows(out))
    assert rows["final version"] == "3" and rows["secure buffers summed"] == "3"
    assert rows["secure buffers aborted"] == "0" and rows["updates seen in clear"] == "0"
    vhost = next(line for line in out.splitlines() if "namespace demo-" in line).split()[3][:-1]
    assert f"deleted vhost {vhost!r} and its 4 users" in out
    client = ManagementClient(secure_node.management_url, "guest", "guest")
    assert client.request("GET", f"vhosts/{segment(vhost)}", allow_missing=True) is None
    users = {u["name"] for u in client.request("GET", "users")}
    assert not {u for u in users if u.startswith(vhost)}


def _rows(out: str) -> list[tuple[str, str]]:
    """The summary's `` key   value`` rows (two or more spaces between them)."""
    rows = []
    for line in out.splitlines():
        key, sep, value = line.strip().partition("  ")
        if sep:
            rows.append((key, value.strip()))
    return rows
