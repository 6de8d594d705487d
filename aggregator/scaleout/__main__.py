"""``python -m aggregator.scaleout edge --index I | root``: one process of a scale-out federation.

Both take ``--edges`` (how many edge queues the hash exchange spreads over), ``--init`` (the
initial model, ``.npz``) and the broker settings (``--amqp-url`` or ``AMQP_URL``, a list on a
cluster; ``--namespace``; ``--quorum-group-size``). The root exits 0 once it has committed
``--max-versions`` versions; an edge once it hears that the run ended, or on SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aggregator.scaleout.edge import EdgeService
from aggregator.scaleout.root import RootService
from aggregator.scaleout.settings import RootSettings, ScaleoutSettings
from broker.settings import BrokerSettings
from runtime.process import configure_logging, stop_on_signals

log = logging.getLogger("fedmq.scaleout")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aggregator.scaleout", description=__doc__)
    p.add_argument("role", choices=["edge", "root"])
    p.add_argument("--edges", type=int, required=True)
    p.add_argument("--init", type=Path, required=True, help="initial model (.npz)")
    p.add_argument("--amqp-url", default=None)
    p.add_argument("--namespace", default="fedmq")
    p.add_argument("--quorum-group-size", type=int, default=None)
    p.add_argument("--heartbeat", type=int, default=30)
    p.add_argument("--prefetch", type=int, default=256, help="edge: deliveries it may hold")
    p.add_argument("--index", type=int, default=0, help="edge: which edge queue it consumes")
    p.add_argument("--state-dir", type=Path, default=Path("root-state"), help="root: checkpoint")
    p.add_argument("--buffer-size", type=int, default=10, help="root: updates per step (K)")
    p.add_argument("--server-lr", type=float, default=1.0, help="root: server learning rate")
    p.add_argument("--max-versions", type=int, default=100, help="root: stop after this many")
    p.add_argument("--log-level", default="info")
    return p


def broker_settings(args: argparse.Namespace) -> BrokerSettings:
    given = {"amqp_url": args.amqp_url} if args.amqp_url else {}
    return BrokerSettings(
        **given,
        namespace=args.namespace,
        heartbeat=args.heartbeat,
        quorum_group_size=args.quorum_group_size,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    common = ScaleoutSettings(broker_settings(args), args.edges, args.init, args.prefetch)
    stop = stop_on_signals()
    if args.role == "edge":
        if not 0 <= args.index < args.edges:
            log.error("--index %d is not one of the %d edges", args.index, args.edges)
            return 2
        EdgeService(common, args.index, stop).run()
        return 0
    settings = RootSettings(
        common, args.state_dir, args.buffer_size, args.server_lr, args.max_versions
    )
    return 0 if RootService(settings, stop).run() else 1


if __name__ == "__main__":
    sys.exit(main())
