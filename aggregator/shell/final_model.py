"""The final model kept on the broker after the end of a run, for workers that attach late.

The aggregator publishes its final version to every worker's queue (``BROADCAST_KEY``) and a copy
to ``<ns>.final`` (``FINAL_KEY``), which nobody consumes: a worker that attaches after the end,
or lost its queue with a connection while the final version went out, peeks at it and stops. A
new run in the namespace empties it first, so it only ever holds the final version of the run
that ended last.
"""

from __future__ import annotations

import logging

from broker import chunked
from broker.connection import AmqpSession
from broker.delivery import Properties
from broker.names import FINAL_KEY, Names

log = logging.getLogger("fedmq.aggregator")


def clear_final(session: AmqpSession, names: Names) -> None:
    """A run in progress: no final model of an earlier run may stop a worker that attaches now."""
    dropped = session.purge_queue(names.final_queue)
    if dropped:
        log.info("dropped the final model of an earlier run from %s", names.final_queue)


def keep_final(
    session: AmqpSession, names: Names, body: chunked.Outgoing, props: Properties
) -> None:
    """Replace what ``<ns>.final`` holds with this final version (every chunk, confirmed;
    ``PublishFailed`` otherwise).

    Emptied first, so a republished final version (a restart after the end) is kept once.
    Between the purge and the publish a late worker finds nothing there; it is bound to the
    broadcast by then, so the final version reaches it in its own queue instead.
    """
    session.purge_queue(names.final_queue)
    chunked.publish(session, names.models_exchange, FINAL_KEY, body, props)
