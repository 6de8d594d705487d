"""The ``fedmq`` command: aggregator, worker, demo, status, report, simulate, audit."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from runtime.cliargs import OneLineParser, run_command


def _commands() -> dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]]
]:
    from aggregator.shell import main as aggregator
    from fedmq.commands import audit, broker, conformance, demo, report, simulate, status
    from worker import main as worker

    return {
        "aggregator": ("run the aggregator", aggregator.setup),
        "worker": ("run a worker", worker.setup),
        "demo": (
            "an aggregator and N workers on this machine, with progress and a summary",
            demo.setup,
        ),
        "status": ("queues, progress, workers and dead letters of a federation", status.setup),
        "report": ("PNG figures and a markdown summary of a run directory", report.setup),
        "simulate": (
            "the same strategies and trainers on a virtual clock, no broker",
            simulate.setup,
        ),
        "broker": (
            "provision a federation on RabbitMQ: vhost, aggregator and worker users",
            broker.setup,
        ),
        "conformance": (
            "run a short federation against any worker command and report the protocol rules it "
            "kept",
            conformance.setup,
        ),
        "audit": (
            "check a run's logs: every confirmed update applied exactly once, one set of weights "
            "per version",
            audit.setup,
        ),
    }


def build_parser() -> tuple[
    argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]
]:
    parser = OneLineParser(
        prog="fedmq", description="Asynchronous federated learning over RabbitMQ."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    runners = {}
    for name, (help_text, setup) in _commands().items():
        runners[name] = setup(sub.add_parser(name, help=help_text, description=help_text))
    return parser, runners


def main(argv: Sequence[str] | None = None) -> int:
    parser, runners = build_parser()
    args = parser.parse_args(argv)
    return run_command(runners[args.command], args, prog=f"fedmq {args.command}")
