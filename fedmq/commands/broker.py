"""``fedmq broker init | add-worker NAME | remove-worker NAME | delete-namespace NS``.

``delete-namespace`` removes a federation's queues and exchanges over AMQP (``AMQP_URL``);
the others provision its users and talk to RabbitMQ's management API as an administrator
whose password comes from ``FEDMQ_MANAGEMENT_PASSWORD`` or ``--management-password-file``
(never a flag). A new user's password is read from ``--password-file`` if that file
exists, otherwise generated and written there (mode 0600), or printed once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

from pydantic import Field

from aggregator.shell.roster import RosterFile
from broker.connection import AmqpSession
from broker.declarations import QueueLimits
from broker.definitions import Roles, federation_definitions
from broker.management import ManagementClient, ManagementSettings
from broker.names import Names
from broker.permissions import aggregator_permissions, worker_permissions
from broker.provision import (
    Federation,
    add_monitor,
    add_worker,
    guest_warning,
    init_federation,
    new_password,
    remove_default_guest,
    remove_worker,
)
from broker.settings import BrokerSettings, read_secret
from broker.teardown import delete_namespace
from runtime.cliargs import OneLineParser, add_settings_arguments, settings_from_args


class ProvisionSettings(ManagementSettings):
    """Which federation to provision, and where the new user's secret and the roster go."""

    namespace: str = Field(
        "fedmq", pattern=r"^[a-z0-9][a-z0-9_\-]{0,47}$", description="The federation's namespace."
    )
    vhost: str | None = Field(None, description="The federation's vhost (default: the namespace).")
    aggregator_user: str | None = Field(
        None, description="init: the aggregator's user (default <namespace>-aggregator)."
    )
    password_file: str | None = Field(
        None,
        description="The new user's password: read if the file exists, else generated into it.",
    )
    roster_file: str | None = Field(
        None,
        description="Roster the aggregator reads (strict identity); updated by add/remove-worker.",
    )
    remove_guest: bool = Field(
        False, description="init: delete the broker's default 'guest' administrator."
    )
    quorum_group_size: int | None = Field(
        None,
        ge=1,
        le=99,
        description=(
            "init, add-worker, definitions: a cluster's replicas per queue (as the aggregator's "
            "FEDMQ_QUORUM_GROUP_SIZE; they must agree). Unset: one broker."
        ),
    )

    def limits(self) -> QueueLimits:
        return QueueLimits(quorum_group_size=self.quorum_group_size)

    def federation(self) -> Federation:
        return Federation(Names(self.namespace), self.vhost or self.namespace)


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    sub = parser.add_subparsers(dest="action", required=True, parser_class=OneLineParser)
    actions = {
        "init": "create the federation's vhost and the aggregator's user",
        "add-worker": "create a worker's user with least-privilege permissions",
        "add-monitor": "create a user for `fedmq status` (no administrator: statistics, reports)",
        "remove-worker": "revoke a worker: delete its user and close its connections",
        "permissions": "print a definitions file's permissions (offline; for docker compose)",
        "definitions": (
            "print a whole definitions file: users (password placeholders), permissions and "
            "topology (offline; docker compose's deploy/rabbitmq/definitions.template.json)"
        ),
    }
    for action, help_text in actions.items():
        p = sub.add_parser(action, help=help_text, description=help_text)
        if action in ("add-worker", "remove-worker", "add-monitor"):
            p.add_argument("name", help="The worker's id, which is also its RabbitMQ user name.")
        if action in ("permissions", "definitions"):
            p.add_argument("workers", nargs="*", help="Worker ids (each is also a user name).")
        add_settings_arguments(p, ProvisionSettings, skip={"management_password"})
    _setup_delete_namespace(sub)
    return run


def _setup_delete_namespace(sub: argparse._SubParsersAction[OneLineParser]) -> None:
    help_text = (
        "remove a federation's queues and exchanges (over AMQP); refused while its aggregator "
        "is attached"
    )
    p = sub.add_parser("delete-namespace", help=help_text, description=help_text)
    p.add_argument("target", metavar="NAMESPACE", help="The federation's namespace.")
    p.add_argument(
        "--force",
        action="store_true",
        help="Delete even while an aggregator consumes its queues (unapplied updates are lost).",
    )
    add_settings_arguments(p, BrokerSettings, skip={"namespace"})


def _delete_namespace(args: argparse.Namespace) -> int:
    settings = settings_from_args(BrokerSettings, args, namespace=args.target)
    with AmqpSession(settings, name="fedmq-broker-delete-namespace") as session:
        removed = delete_namespace(session, Names(settings.namespace), force=args.force)
    if not removed.queues and not removed.exchanges:
        print(f"namespace {settings.namespace!r}: nothing to delete")
        return 0
    print(
        f"namespace {settings.namespace!r} deleted: {len(removed.queues)} queue(s) "
        f"({removed.messages} waiting message(s) dropped), {len(removed.exchanges)} exchange(s)"
    )
    return 0


def _password(settings: ProvisionSettings) -> tuple[str, str]:
    """(password, where it is) for a new user."""
    if settings.password_file and Path(settings.password_file).exists():
        return read_secret(settings.password_file), f"read from {settings.password_file}"
    password = new_password()
    if settings.password_file:
        fd = os.open(settings.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(password + "\n")
        return password, f"generated into {settings.password_file}"
    return password, f"generated: {password}"


def _url_hint(settings: ProvisionSettings, user: str) -> str:
    host = urlsplit(settings.management_url).hostname or "localhost"
    return f"amqps://{user}:<password>@{host}:5671/{quote(settings.federation().vhost, safe='')}"


def definitions_permissions(
    settings: ProvisionSettings, workers: list[str]
) -> list[dict[str, str]]:
    """The ``permissions`` of a RabbitMQ definitions file for the aggregator and ``workers``."""
    fed = settings.federation()
    grants = {
        settings.aggregator_user or f"{settings.namespace}-aggregator": aggregator_permissions(
            fed.names
        )
    }
    grants.update({w: worker_permissions(fed.names, w) for w in workers})
    return [{"user": user, "vhost": fed.vhost, **p.as_api_body()} for user, p in grants.items()]


def render_definitions(settings: ProvisionSettings, workers: list[str]) -> str:
    """The definitions file's text (one resource per line, so diffs stay readable)."""
    fed, ns = settings.federation(), settings.namespace
    roles = Roles(
        admin=f"{ns}-admin",
        aggregator=settings.aggregator_user or f"{ns}-aggregator",
        monitor=f"{ns}-monitor",
        workers=tuple(workers),
    )
    document = federation_definitions(fed.names, fed.vhost, roles, settings.limits())
    sections = [
        f'  "{key}": [\n' + ",\n".join(f"    {json.dumps(item)}" for item in items) + "\n  ]"
        for key, items in document.items()
    ]
    return "{\n" + ",\n".join(sections) + "\n}\n"


def _print_offline(settings: ProvisionSettings, action: str, workers: list[str]) -> int:
    if action == "permissions":
        print(json.dumps({"permissions": definitions_permissions(settings, workers)}, indent=2))
    else:
        print(render_definitions(settings, workers), end="")
    return 0


def _add_monitor(client: ManagementClient, settings: ProvisionSettings, name: str) -> int:
    password, where = _password(settings)
    add_monitor(client, settings.federation(), name, password)
    print(f"monitor {name!r} added to vhost {settings.federation().vhost!r} (password {where})")
    print(f"  fedmq status --amqp-url {_url_hint(settings, name)}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "delete-namespace":
        return _delete_namespace(args)
    settings = settings_from_args(ProvisionSettings, args)
    if args.action in ("permissions", "definitions"):
        return _print_offline(settings, args.action, args.workers)
    client = ManagementClient.from_settings(settings)
    fed = settings.federation()
    roster = RosterFile(settings.roster_file) if settings.roster_file else None
    if args.action == "init":
        user = settings.aggregator_user or f"{settings.namespace}-aggregator"
        password, where = _password(settings)
        if settings.remove_guest:  # first: refused (provisioning as guest) before anything is done
            removed = remove_default_guest(client)
            print("default user 'guest' removed" if removed else "no default user 'guest'")
        init_federation(client, fed, user, password, settings.limits())
        print(f"vhost {fed.vhost!r} ready; aggregator user {user!r} created (password {where})")
        print(f"  AMQP_URL={_url_hint(settings, user)}  --identity strict")
        warning = guest_warning(client)
        if warning:
            print(f"fedmq broker: warning: {warning}", file=sys.stderr)
        return 0
    if args.action == "add-monitor":
        return _add_monitor(client, settings, args.name)
    if args.action == "add-worker":
        password, where = _password(settings)
        add_worker(client, fed, args.name, password, settings.limits())
        if roster:
            roster.update(lambda r: r.with_worker(args.name))
        print(f"worker {args.name!r} added to vhost {fed.vhost!r} (password {where})")
        print(f"  AMQP_URL={_url_hint(settings, args.name)}  --worker-id {args.name}")
        return 0
    closed = remove_worker(client, fed, args.name)
    if roster:
        roster.update(lambda r: r.without_worker(args.name))
    print(f"worker {args.name!r} revoked: user deleted, {closed} connection(s) closed")
    return 0
