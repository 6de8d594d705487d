"""``fedmq demo --secure-aggregation``: one broker user per process, on a vhost of the demo's own.

Secure aggregation binds a worker's keys to its broker-validated user (strict
identity), so it cannot run on one shared account such as ``guest``. Through
RabbitMQ's management API (``FEDMQ_MANAGEMENT_URL``, ``FEDMQ_MANAGEMENT_USER``
and ``FEDMQ_MANAGEMENT_PASSWORD[_FILE]``; by default port 15672 of the AMQP
host, with the AMQP URL's own user and password) the demo does what
``fedmq broker init`` and ``add-worker`` do: it creates a vhost named after
its namespace with the federation's topology, the aggregator's user and one
user per worker, with random passwords in files of mode 0600 in the run
directory and a roster for the aggregator. It says so, and deletes the vhost
and the users at the end (``--keep`` keeps them).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from aggregator.core.identity import Roster
from aggregator.settings import AggregatorSettings
from aggregator.shell.roster import RosterFile
from broker.errors import BrokerError
from broker.management import ManagementClient, ManagementSettings, segment
from broker.names import Names
from broker.provision import Federation, ProvisionError, add_worker, init_federation, new_password
from broker.settings import read_secret
from runtime.cliargs import CliError

#: ``fedmq demo --secure-aggregation``'s defaults (flags and environment still win).
SECURE_DEFAULTS: dict[str, Any] = {
    "strategy": "fedbuff",
    "identity": "strict",
    "secure_stage_timeout": 10.0,
    "eval_every": 5,
}
SECURE_MAX_VERSIONS = 30


def secure_defaults(workers: int) -> dict[str, Any]:
    """Buffers of all workers but one (at least 2): one slow or dead worker costs no buffer."""
    return {**SECURE_DEFAULTS, "buffer_size": max(2, workers - 1)}


@dataclass(frozen=True)
class SecureLogins:
    """Who each process of the demo logs in as, and where its password lies."""

    vhost: str
    host: str
    port: int
    secrets: Path
    aggregator: str
    workers: tuple[str, ...]

    @property
    def roster(self) -> Path:
        return self.secrets / "roster.json"

    def password_file(self, user: str) -> Path:
        return self.secrets / f"{user}.pw"

    def flags(self, user: str) -> list[str]:
        """A process's ``--amqp-url`` (no password in it) and ``--amqp-password-file``."""
        url = f"amqp://{quote(user, safe='')}@{self.host}:{self.port}/{quote(self.vhost, safe='')}"
        return ["--amqp-url", url, "--amqp-password-file", str(self.password_file(user))]

    def aggregator_flags(self) -> list[str]:
        return [
            *self.flags(self.aggregator),
            "--identity",
            "strict",
            "--roster-file",
            str(self.roster),
        ]


def management_client(settings: AggregatorSettings) -> ManagementClient:
    """``FEDMQ_MANAGEMENT_*`` if set; otherwise port 15672 of the AMQP host, as the AMQP user."""
    parts = urlsplit(settings.primary_url)
    env = ManagementSettings()
    url = env.management_url
    if "FEDMQ_MANAGEMENT_URL" not in os.environ:
        url = f"http://{parts.hostname or 'localhost'}:15672"
    if env.management_password is not None or env.management_password_file is not None:
        return ManagementClient(url, env.management_user, env.password(), env.management_ca_file)
    password = unquote(parts.password or "")
    if settings.amqp_password_file:
        password = read_secret(settings.amqp_password_file)
    return ManagementClient(url, unquote(parts.username or "guest"), password, None)


def logins_for(settings: AggregatorSettings, workers: int) -> SecureLogins:
    parts = urlsplit(settings.primary_url)
    ns = settings.namespace
    return SecureLogins(
        vhost=ns,
        host=parts.hostname or "localhost",
        port=parts.port or 5672,
        secrets=settings.run_path / "secrets",
        aggregator=f"{ns}-aggregator",
        workers=tuple(f"{ns}-w{i}" for i in range(workers)),
    )


def provision(client: ManagementClient, logins: SecureLogins, namespace: str) -> None:
    """Create the vhost, its topology and every user; say what is created, and where."""
    try:
        client.request("GET", "whoami")  # before anything is created or announced
    except BrokerError as exc:
        raise CliError(f"--secure-aggregation {_NEEDS}: {exc}") from exc
    print(
        f"fedmq demo: --secure-aggregation needs one broker user per process (strict identity); "
        f"creating through {client.url} as {client.user!r}: vhost {logins.vhost!r}, users "
        f"{logins.aggregator!r} and {', '.join(repr(w) for w in logins.workers)} (passwords in "
        f"{logins.secrets}, mode 0600); deleted at the end unless --keep",
        flush=True,
    )
    logins.secrets.mkdir(parents=True, exist_ok=True, mode=0o700)
    fed = Federation(Names(namespace), logins.vhost)
    try:
        init_federation(client, fed, logins.aggregator, _new_secret(logins, logins.aggregator))
        for worker in logins.workers:
            add_worker(client, fed, worker, _new_secret(logins, worker))
    except (BrokerError, ProvisionError) as exc:
        deprovision(client, logins, quiet=True)
        raise CliError(
            f"--secure-aggregation could not provision its users ({_NEEDS}): {exc}"
        ) from exc
    RosterFile(logins.roster).update(lambda r: _admit(r, logins.workers))


def _admit(roster: Roster, workers: tuple[str, ...]) -> Roster:
    for worker in workers:
        roster = roster.with_worker(worker)
    return roster


_NEEDS = (
    "provisions one broker user per process through RabbitMQ's management API as an "
    "administrator (the rabbitmq_management plugin; FEDMQ_MANAGEMENT_URL, FEDMQ_MANAGEMENT_USER, "
    "FEDMQ_MANAGEMENT_PASSWORD_FILE)"
)


def _new_secret(logins: SecureLogins, user: str) -> str:
    password = new_password()
    fd = os.open(logins.password_file(user), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password


def deprovision(client: ManagementClient, logins: SecureLogins, *, quiet: bool = False) -> None:
    """Delete the demo's vhost (its queues and exchanges with it) and its users."""
    users = [logins.aggregator, *logins.workers]
    try:
        client.request("DELETE", f"vhosts/{segment(logins.vhost)}", allow_missing=True)
        for user in users:
            client.request("DELETE", f"users/{segment(user)}", allow_missing=True)
    except BrokerError as exc:
        if not quiet:
            print(
                f"fedmq demo: could not delete the demo's vhost and users: {exc}", file=sys.stderr
            )
        return
    if not quiet:
        print(f"fedmq demo: deleted vhost {logins.vhost!r} and its {len(users)} users", flush=True)


def secure_rows(run_dir: Path) -> list[tuple[str, object]]:
    """What the audit says of the secure buffers: summed, aborted, contributors per sum."""
    events = _audit(run_dir)
    sums = [e for e in events if e.get("event") == "secure-buffer-sum"]
    aborted = [e for e in events if e.get("event") == "secure-buffer-aborted"]
    clear = [e for e in events if e.get("event") == "applied"]
    sizes = [len(e.get("contributors", ())) for e in sums]
    return [
        ("secure buffers summed", len(sums)),
        ("secure buffers aborted", len(aborted)),
        ("contributors / buffer", f"{min(sizes)}-{max(sizes)}" if sizes else "n/a"),
        ("updates seen in clear", len(clear)),
    ]


def masked_inputs_sent(run_dir: Path, worker_id: str) -> int:
    """How many masked inputs the worker's own event file says it sent."""
    events = _events(run_dir / f"{worker_id}.events.jsonl")
    return sum(1 for e in events if e.get("event") == "secure-sent" and e.get("stage") == "masked")


def _audit(run_dir: Path) -> list[dict[str, Any]]:
    return _events(run_dir / "audit.jsonl")


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
