"""``fedmq status``: queues, the aggregator's progress, workers and dead letters of a federation."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable

from broker.connection import AmqpSession
from broker.errors import ConnectionLost
from fedmq.status.settings import StatusSettings
from runtime.cliargs import add_settings_arguments, settings_from_args

CLEAR_SCREEN = "\x1b[H\x1b[2J"
#: Exit status when ``--max-age`` finds no fresh report from the aggregator.
STALE_EXIT = 3


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    add_settings_arguments(parser, StatusSettings)
    parser.add_argument(
        "--json",
        action="store_true",
        help="Print JSON for scripts (one object per line with --watch).",
    )
    parser.add_argument(
        "--watch",
        type=float,
        nargs="?",
        const=2.0,
        default=None,
        metavar="SECONDS",
        help="Refresh every SECONDS (default 2) until interrupted.",
    )
    return run


def run(args: argparse.Namespace) -> int:
    from runtime.process import stop_on_signals

    settings = settings_from_args(StatusSettings, args, connect_attempts=1)
    stop = stop_on_signals() if args.watch else threading.Event()
    with AmqpSession(settings, name="fedmq-status") as session:
        while True:
            try:
                code = _show(
                    settings,
                    session,
                    as_json=args.json,
                    clear=bool(args.watch) and sys.stdout.isatty(),
                )
            except BrokenPipeError:  # `fedmq status --watch | head`: the reader left
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
            if not args.watch or stop.wait(args.watch):
                return code


def _show(settings: StatusSettings, session: AmqpSession, *, as_json: bool, clear: bool) -> int:
    from fedmq.status.render import render
    from fedmq.status.snapshot import take_snapshot

    try:
        snapshot = take_snapshot(settings, session)
    except ConnectionLost:
        session.open()  # one retry on a fresh connection (e.g. the broker restarted under --watch)
        snapshot = take_snapshot(settings, session)
    text = json.dumps(snapshot.to_json()) if as_json else render(snapshot)
    print((CLEAR_SCREEN if clear else "") + text, flush=True)
    age = snapshot.report_age
    fresh = age is not None and settings.max_age is not None and age <= settings.max_age
    return STALE_EXIT if settings.max_age is not None and not fresh else 0
