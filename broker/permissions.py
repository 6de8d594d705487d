"""Least-privilege RabbitMQ permissions for a federation's users, as pure functions.

RabbitMQ grants each user three regular expressions per vhost, matched
against resource names: *configure* (declare, delete), *write* (publish to an
exchange; bind a queue, which also needs *read* on the exchange) and *read*
(consume from a queue; bind from an exchange). The default exchange is
checked under the name ``amq.default``; no regex here can match it, because a
writer to the default exchange could reach any queue by name.

Nobody at run time may *configure* anything shared (the aggregator may declare
its own lease, ``ns.aggregator``, an exclusive queue nobody can write): a
configure grant is a grant to set queue arguments (a dead-letter exchange and a TTL re-inject every
message somewhere else), to delete, and to squat names. So the provisioner
(``fedmq broker init | add-worker``, a broker administrator) declares the
whole topology, each worker's model queue included (``broker.declarations``),
and the runtime roles get only what they use (``ns`` is the federation's
namespace, see ``broker.names``):

=============  ========================================  ========================================
role           may                                       may not
=============  ========================================  ========================================
worker ``w``   consume ``ns.models.w``; peek at          configure, bind or delete anything;
               ``ns.final``; publish to ``ns.inbox``     publish a model; read any other queue or
               (updates, model requests)                 any exchange; write the default exchange
aggregator     hold ``ns.aggregator`` (its lease);       configure, bind or delete anything else;
               consume ``ns.results``/``ns.requests``;
               publish to ``ns.models``, ``ns.dead``,    publish to ``ns.inbox`` (forge updates);
               ``ns.status``                             read an exchange (bind a queue to it)
=============  ========================================  ========================================

Binding needs write on the destination and read on the source: no runtime
role holds both for any pair, so no runtime role can bind at all.

The strings are meant to be reused: ``fedmq broker`` sends them to the
management API, and ``docs/security.md`` shows them for definitions files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from broker.names import Names

#: RabbitMQ reads the empty pattern as "matches nothing".
NOTHING = ""


@dataclass(frozen=True)
class Permissions:
    """One user's configure / write / read regexes on one vhost."""

    configure: str
    write: str
    read: str

    def as_api_body(self) -> dict[str, str]:
        """The body of the management API's ``PUT /api/permissions/{vhost}/{user}``."""
        return {"configure": self.configure, "write": self.write, "read": self.read}

    def allows(self, kind: str, resource: str) -> bool:
        """Does the ``kind`` regex (configure | write | read) match ``resource``, as RabbitMQ
        matches it?
        """
        pattern: str = getattr(self, kind)
        return pattern != NOTHING and re.search(pattern, resource) is not None


def exactly(*names: str) -> str:
    """A regex matching exactly these resource names and nothing else."""
    return "|".join(f"^{re.escape(name)}$" for name in dict.fromkeys(names))


def worker_permissions(names: Names, worker_id: str) -> Permissions:
    """A worker reads its own model queue and the final model, writes the inbox, nothing more."""
    own_queue = names.worker_queue(worker_id)
    return Permissions(
        configure=NOTHING,
        write=exactly(names.inbox_exchange),
        read=exactly(own_queue, names.final_queue),
    )


def aggregator_permissions(names: Names) -> Permissions:
    """The runtime aggregator consumes updates and requests and publishes models, dead letters and
    status reports; the topology is the provisioner's.
    """
    # Read on ``ns.status``: its healthcheck (`fedmq status --max-age`) peeks at its own reports.
    # The name is also the status exchange's, which lets it bind that exchange to one it writes:
    # status reports then reach models or dead letters, which it may publish anyway, never results.
    # Configure on its lease only: an exclusive, unbound queue that nobody can write (no role has
    # write on it), so whatever arguments it is declared with, nothing ever reaches it.
    return Permissions(
        configure=exactly(names.aggregator_lease),
        write=exactly(names.models_exchange, names.dead_exchange, names.status_exchange),
        read=exactly(
            names.results_queue,
            names.requests_queue,
            names.status_queue,
            names.secure_queue,
            names.final_queue,  # emptied when a run starts (queue.purge needs read)
        ),
    )


def monitor_permissions(names: Names) -> Permissions:
    """``fedmq status`` without administrator rights: peek at the status report and the dead
    letters (read), nothing else; queue depths come from passive declares or the management API
    (the user's ``monitoring`` tag)."""
    return Permissions(
        configure=NOTHING, write=NOTHING, read=exactly(names.status_queue, names.dead_queue)
    )
