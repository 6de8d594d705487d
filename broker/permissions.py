"""Least-privilege RabbitMQ permissions for a federation's users, as pure functions.

RabbitMQ grants each user three regular expressions per vhost, matched
against resource names: *configure* (declare, delete), *write* (publish to an
exchange; bind a queue, which also needs *read* on the exchange) and *read*
(consume from a queue; bind from an exchange). The default exchange is
checked under the name ``amq.default``; no regex here can match it, because a
writer to the default exchange could reach any queue by name.

What each role may do (``ns`` is the federation's namespace, see ``broker.names``):

=============  ==========================================  =====================================
role           may                                         may not
=============  ==========================================  =====================================
worker ``w``   declare, bind and consume ``ns.models.w``;  publish a model; consume or bind the
               publish to ``ns.inbox`` (updates, requests); results or status queues; touch other
               claim a partition (``ns.partition.<i>``)     workers' queues; write the default
                                                           exchange
aggregator     declare the shared topology; consume        publish to ``ns.inbox`` (it cannot
               ``ns.results``/``ns.requests``; publish to  forge updates); touch worker queues
               ``ns.models``, ``ns.dead``, ``ns.status``
=============  ==========================================  =====================================

The strings are meant to be reused: ``fedmq broker`` sends them to the
management API, and ``docs/security.md`` shows them for definitions files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from broker.names import Names


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
        return re.search(getattr(self, kind), resource) is not None


def exactly(*names: str) -> str:
    """A regex matching exactly these resource names and nothing else."""
    return "|".join(f"^{re.escape(name)}$" for name in dict.fromkeys(names))


def worker_permissions(names: Names, worker_id: str) -> Permissions:
    """A worker owns its model queue, may claim a data partition and publish to the inbox, nothing
    more.
    """
    own_queue = names.worker_queue(worker_id)
    return Permissions(
        configure=exactly(own_queue) + "|" + f"^{re.escape(names.claim_prefix)}[0-9]+$",
        write=exactly(names.inbox_exchange, own_queue),
        read=exactly(names.models_exchange, own_queue),
    )


def aggregator_permissions(names: Names) -> Permissions:
    """The aggregator declares the shared topology, consumes updates and requests, publishes models.

    Binding ``results``/``requests`` to the inbox needs write on those queues and
    read on the inbox; declaring ``results`` with its dead-letter exchange needs
    read on ``results`` and write on ``dead``.
    """
    return Permissions(
        configure=exactly(*names.exchanges(), *names.queues()),
        write=exactly(
            names.models_exchange, names.dead_exchange, names.status_exchange, *names.queues()
        ),
        read=exactly(
            names.inbox_exchange, names.dead_exchange, names.status_exchange, *names.queues()
        ),
    )
