"""A strict-identity deployment from Python: one RabbitMQ user per worker, passwords in files.

`fedmq broker init` creates the federation's vhost, its topology and the aggregator's
user; `fedmq broker add-worker` one least-privilege user per worker and the roster the
aggregator reads. The aggregator runs with ``identity="strict"``: an update counts only
if the broker-validated ``user_id`` is the worker id it claims, so no worker can pose
as another. Afterwards the vhost and the users are deleted.

Needs a RabbitMQ with the management API and an administrator (never the shared guest
of a production broker):

    FEDMQ_MANAGEMENT_URL=http://127.0.0.1:15672 FEDMQ_MANAGEMENT_USER=admin \\
    FEDMQ_MANAGEMENT_PASSWORD=... FEDMQ_EXAMPLE_AMQP_ADDRESS=127.0.0.1:5672 \\
    python examples/strict_identity.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from broker.management import ManagementClient, ManagementSettings, segment
from fedmq.api import AggregatorSettings, run
from fedmq.cli import main as fedmq
from tasks.builtin import make_trainer

WORKERS = 2


def provision(namespace: str, secrets: Path) -> list[str]:
    """The federation's vhost and users (password files in ``secrets``); the users' names."""
    users = [f"{namespace}-aggregator", *(f"{namespace}-worker-{i}" for i in range(WORKERS))]
    for user in users:
        action = ["init"] if user.endswith("-aggregator") else ["add-worker", user]
        flags = ["--namespace", namespace, "--password-file", str(secrets / f"{user}.pw")]
        roster = ["--roster-file", str(secrets / "roster.json")]
        if fedmq(["broker", *action, *flags, *roster]) != 0:
            raise SystemExit(f"provisioning {user} failed")
    return users


def connection(user: str, namespace: str, secrets: Path) -> dict[str, Any]:
    """Settings that connect as ``user``, the password read from its file (never in a URL)."""
    address = os.environ.get("FEDMQ_EXAMPLE_AMQP_ADDRESS", "127.0.0.1:5672")
    return {
        "amqp_url": f"amqp://{user}@{address}/{namespace}",
        "amqp_password_file": str(secrets / f"{user}.pw"),
    }


def deprovision(namespace: str, users: list[str]) -> None:
    client = ManagementClient.from_settings(ManagementSettings())
    client.request("DELETE", f"vhosts/{segment(namespace)}", allow_missing=True)
    for user in users:
        client.request("DELETE", f"users/{segment(user)}", allow_missing=True)


def main() -> int:
    if "FEDMQ_MANAGEMENT_PASSWORD" not in os.environ:
        print("set FEDMQ_MANAGEMENT_URL, FEDMQ_MANAGEMENT_USER and FEDMQ_MANAGEMENT_PASSWORD")
        return 2
    namespace = os.environ.get("FEDMQ_EXAMPLE_NAMESPACE", f"example-{uuid.uuid4().hex[:8]}")
    with tempfile.TemporaryDirectory() as tmp:
        secrets = Path(tmp)
        users = provision(namespace, secrets)
        try:
            settings = AggregatorSettings(
                **connection(users[0], namespace, secrets),
                namespace=namespace,
                identity="strict",
                roster_file=str(secrets / "roster.json"),
                num_partitions=WORKERS,
                max_versions=30,
                max_seconds=60,  # a guard: a script should not run on forever
                run_dir=str(secrets / "run"),
                state_dir=str(secrets / "state"),
            )
            result = run(
                settings,
                make_trainer,
                workers=WORKERS,
                worker_settings=lambda i: connection(users[1 + i], namespace, secrets),
            )
        finally:
            deprovision(namespace, users)
    summary = result.summary
    print(f"stopped because: {summary.stopped_because}")
    print(f"version {summary.version}, test accuracy {summary.accuracy:.3f}")
    # Updates still in flight when the run ended are acknowledged as after-final, not refused.
    late = summary.rejected.get("after-final", 0)
    refused = {r: n for r, n in summary.rejected.items() if r != "after-final"}
    print(f"identity strict: {summary.applied} updates applied, {late} after the end")
    print(f"refused {sum(refused.values())} {refused or ''}".rstrip())
    for worker_id, stats in sorted(result.workers.items()):
        print(f"  {worker_id} (its own AMQP user): {stats.updates_confirmed} updates confirmed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
