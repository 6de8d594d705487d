"""Provision a federation on RabbitMQ: its vhost and topology, the aggregator's user, one user and
one model queue per worker.

Each function is a few management API calls (see ``broker.management``);
the permissions come from ``broker.permissions`` and the topology from
``broker.declarations``. The provisioner declares everything, because no
runtime user may configure anything.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from broker.declarations import (
    Binding,
    Declaration,
    Exchange,
    QueueLimits,
    shared_topology,
    worker_topology,
)
from broker.management import ManagementClient, ManagementError, segment
from broker.names import Names
from broker.permissions import (
    Permissions,
    aggregator_permissions,
    monitor_permissions,
    worker_permissions,
)

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
CLOSE_REASON = "fedmq: the worker was revoked"
MONITORING = "monitoring"


class ProvisionError(ValueError):
    """A provisioning request that would be unsafe or cannot be done (one line for the CLI)."""


@dataclass(frozen=True)
class Federation:
    """Which federation (namespace) lives in which vhost."""

    names: Names
    vhost: str


def new_password() -> str:
    """192 random bits, URL-safe (it ends up in an amqp:// URL)."""
    return secrets.token_urlsafe(24)


def get_user(client: ManagementClient, name: str) -> dict[str, Any] | None:
    user: dict[str, Any] | None = client.request(
        "GET", f"users/{segment(name)}", allow_missing=True
    )
    return user


def _tags(user: dict[str, Any]) -> list[str]:
    tags = user.get("tags", [])
    return [t for t in tags.split(",") if t] if isinstance(tags, str) else list(tags)


def _create_user(client: ManagementClient, name: str, password: str, tags: str = "") -> None:
    """A new user, by default with no tags (no management UI, no administration); refuses to
    overwrite one."""
    if not USER_NAME.match(name):
        raise ProvisionError(f"user name {name!r} must match {USER_NAME.pattern}")
    if get_user(client, name) is not None:
        raise ProvisionError(
            f"user {name!r} already exists; remove it first (or pick another name)"
        )
    client.request("PUT", f"users/{segment(name)}", {"password": password, "tags": tags})


def _grant(client: ManagementClient, vhost: str, user: str, permissions: Permissions) -> None:
    client.request(
        "PUT", f"permissions/{segment(vhost)}/{segment(user)}", permissions.as_api_body()
    )


_FULL = Permissions(".*", ".*", ".*")


@contextlib.contextmanager
def _admin_access(client: ManagementClient, vhost: str) -> Iterator[None]:
    """The API declares and deletes with the administrator's own vhost permissions: grant them for
    the moment, and take them back, so the administrator's account is not a usable federation
    member by accident (it can always grant itself access again).
    """
    _grant(client, vhost, client.user, _FULL)
    try:
        yield
    finally:
        client.request(
            "DELETE", f"permissions/{segment(vhost)}/{segment(client.user)}", allow_missing=True
        )


def _declare(client: ManagementClient, vhost: str, declarations: list[Declaration]) -> None:
    with _admin_access(client, vhost):
        for d in declarations:
            _declare_one(client, segment(vhost), d)


def _declare_one(client: ManagementClient, vhost: str, d: Declaration) -> None:
    if isinstance(d, Exchange):
        client.request(
            "PUT", f"exchanges/{vhost}/{segment(d.name)}", {"type": d.kind, "durable": True}
        )
    elif isinstance(d, Binding):
        path = f"bindings/{vhost}/e/{segment(d.exchange)}/q/{segment(d.queue)}"
        client.request("POST", path, {"routing_key": d.routing_key, "arguments": {}})
    else:
        body = {"durable": True, "auto_delete": False, "arguments": d.arguments}
        client.request("PUT", f"queues/{vhost}/{segment(d.name)}", body)


def init_federation(
    client: ManagementClient,
    fed: Federation,
    aggregator_user: str,
    password: str,
    limits: QueueLimits | None = None,
) -> None:
    """Create the federation's vhost, its whole shared topology and the aggregator's user (the vhost
    and topology may exist already: declaring is idempotent).
    """
    client.request(
        "PUT",
        f"vhosts/{segment(fed.vhost)}",
        {"description": f"fedmq federation {fed.names.namespace}"},
    )
    _declare(client, fed.vhost, shared_topology(fed.names, limits or QueueLimits()))
    _create_user(client, aggregator_user, password)
    _grant(client, fed.vhost, aggregator_user, aggregator_permissions(fed.names))


def guest_warning(client: ManagementClient) -> str | None:
    """A warning if the broker still has its default ``guest`` administrator (password ``guest``,
    and the official Docker image lets it log in from anywhere)."""
    guest = get_user(client, "guest")
    if guest is None or "administrator" not in _tags(guest):
        return None
    return (
        "the broker still has the default administrator 'guest' (password 'guest'): remove it "
        "(`fedmq broker init --remove-guest` as another administrator) or at least change its "
        "password"
    )


def remove_default_guest(client: ManagementClient) -> bool:
    """Delete the default ``guest`` user; ``False`` if there is none. Refused when it is the
    account we are provisioning with (that would lock the operator out)."""
    if client.user == "guest":
        raise ProvisionError(
            "refusing to remove 'guest' while provisioning as 'guest': create another "
            "administrator and provision with it"
        )
    if get_user(client, "guest") is None:
        return False
    client.request("DELETE", "users/guest", allow_missing=True)
    close_connections(client, "guest")
    return True


def add_worker(
    client: ManagementClient,
    fed: Federation,
    worker_id: str,
    password: str,
    limits: QueueLimits | None = None,
) -> None:
    """A worker's user (its name is its worker id) with the worker's least privileges, and its
    model queue, which the worker may only read.
    """
    if client.request("GET", f"vhosts/{segment(fed.vhost)}", allow_missing=True) is None:
        raise ProvisionError(f"vhost {fed.vhost!r} does not exist; run `fedmq broker init` first")
    _create_user(client, worker_id, password)
    _declare(client, fed.vhost, worker_topology(fed.names, worker_id, limits))
    _grant(client, fed.vhost, worker_id, worker_permissions(fed.names, worker_id))


def close_connections(client: ManagementClient, user: str) -> int:
    """Close every open connection of ``user``; returns how many were closed."""
    closed = 0
    for conn in client.request("GET", "connections?columns=name,user") or []:
        if conn.get("user") == user:
            _close(client, conn["name"])
            closed += 1
    return closed


def _close(client: ManagementClient, name: str) -> None:
    try:
        client.request(
            "DELETE",
            f"connections/{segment(name)}",
            allow_missing=True,
            headers={"X-Reason": CLOSE_REASON},
        )
    except ManagementError:
        pass  # it closed by itself meanwhile


def add_monitor(client: ManagementClient, fed: Federation, name: str, password: str) -> None:
    """A user for ``fedmq status`` without administrator rights: tag ``monitoring`` (the
    management API's statistics, read-only) and read on the status and dead-letter queues."""
    if client.request("GET", f"vhosts/{segment(fed.vhost)}", allow_missing=True) is None:
        raise ProvisionError(f"vhost {fed.vhost!r} does not exist; run `fedmq broker init` first")
    _create_user(client, name, password, tags=MONITORING)
    _grant(client, fed.vhost, name, monitor_permissions(fed.names))


def remove_worker(client: ManagementClient, fed: Federation, worker_id: str) -> int:
    """Revoke a worker: delete its user (no new connection), close its connections and delete its
    model queue; returns how many connections were closed.
    """
    user = get_user(client, worker_id)
    if user is not None and set(_tags(user)) - {MONITORING}:  # a monitor may go the same way
        raise ProvisionError(
            f"user {worker_id!r} has tags {_tags(user)}: it is not a worker, refusing to delete it"
        )
    if user is not None:
        client.request("DELETE", f"users/{segment(worker_id)}", allow_missing=True)
    closed = close_connections(client, worker_id)
    queue = f"queues/{segment(fed.vhost)}/{segment(fed.names.worker_queue(worker_id))}"
    with _admin_access(client, fed.vhost):
        client.request("DELETE", queue, allow_missing=True)
    return closed
