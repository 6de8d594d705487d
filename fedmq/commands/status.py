"""``fedmq status``: queue depths and consumer counts of a federation."""

from __future__ import annotations

import argparse
import json
from typing import Callable

from broker.connection import AmqpSession
from broker.errors import NotFound
from broker.names import Names
from broker.settings import BrokerSettings
from fedmq.cliargs import add_settings_arguments, settings_from_args


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    add_settings_arguments(parser, BrokerSettings)
    parser.add_argument("--json", action="store_true", help="Print JSON for scripts.")
    return run


def queue_table(settings: BrokerSettings) -> list[dict[str, object]]:
    """Ready messages and consumers per queue (passive declares; no management plugin needed)."""
    names = Names(settings.namespace)
    rows = []
    with AmqpSession(settings, name="fedmq-status") as session:
        for queue in names.queues():
            try:
                ready, consumers = session.queue_counts(queue)
                rows.append({"queue": queue, "ready": ready, "consumers": consumers})
            except NotFound:
                rows.append({"queue": queue, "ready": None, "consumers": None})
                session.open()  # a 404 closes the channel
    return rows


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(BrokerSettings, args, connect_attempts=1)
    rows = queue_table(settings)
    if args.json:
        print(json.dumps({"namespace": settings.namespace, "queues": rows}))
        return 0
    print(f"federation {settings.namespace!r} on {settings.masked_url()}")
    print(f"{'queue':<40} {'ready':>8} {'consumers':>10}")
    for row in rows:
        ready = "missing" if row["ready"] is None else row["ready"]
        consumers = "-" if row["consumers"] is None else row["consumers"]
        print(f"{row['queue']:<40} {ready!s:>8} {consumers!s:>10}")
    return 0
