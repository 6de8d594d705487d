"""A RabbitMQ definitions file for a whole federation (docker compose), as a pure function.

The broker imports it at boot (``definitions.local.path``): the vhost, one
user per role and per worker (passwords as ``@NAME@`` placeholders that
``deploy/rabbitmq/render-definitions.sh`` fills from secrets), the
least-privilege permissions of ``broker.permissions`` and the whole topology
of ``broker.declarations``, each worker's model queue included, because no
runtime user may declare anything. ``fedmq broker definitions`` prints it;
``deploy/rabbitmq/definitions.template.json`` is its output, checked by a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.declarations import QueueLimits, as_definitions, shared_topology, worker_topology
from broker.names import Names
from broker.permissions import (
    Permissions,
    aggregator_permissions,
    monitor_permissions,
    worker_permissions,
)


@dataclass(frozen=True)
class Roles:
    """The user names of a federation's roles."""

    admin: str
    aggregator: str
    monitor: str
    workers: tuple[str, ...]


def placeholder(user: str) -> str:
    """``fedmq-worker-3`` -> ``@FEDMQ_WORKER_3_PASSWORD@`` (the variable holding its password)."""
    return "@" + user.upper().replace("-", "_").replace(".", "_") + "_PASSWORD@"


def federation_definitions(
    names: Names, vhost: str, roles: Roles, limits: QueueLimits | None = None
) -> dict[str, Any]:
    """Users, permissions, topology and the results queue's dead-lettering policy."""
    grants: dict[str, Permissions] = {
        roles.admin: Permissions(".*", ".*", ".*"),
        roles.aggregator: aggregator_permissions(names),
        roles.monitor: monitor_permissions(names),
    }
    grants.update({w: worker_permissions(names, w) for w in roles.workers})
    tags = {roles.admin: ["administrator"], roles.monitor: ["monitoring"]}
    limits = limits or QueueLimits()
    declarations = shared_topology(names, limits)
    for worker in roles.workers:
        declarations += worker_topology(names, worker, limits)
    return {
        "vhosts": [{"name": vhost}],
        "users": [
            {"name": user, "password": placeholder(user), "tags": tags.get(user, [])}
            for user in grants
        ],
        "permissions": [{"user": u, "vhost": vhost, **p.as_api_body()} for u, p in grants.items()],
        **as_definitions(declarations, vhost),
        "policies": [
            {
                "vhost": vhost,
                "name": f"{names.namespace}-results-at-least-once-dead-lettering",
                "pattern": f"^{names.results_queue.replace('.', chr(92) + '.')}$",
                "apply-to": "queues",
                "priority": 0,
                "definition": {"dead-letter-strategy": "at-least-once"},
            }
        ],
    }
