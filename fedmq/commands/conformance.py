"""``fedmq conformance -- CMD ...``: run a short federation against a worker, report the rules kept.

For authors of workers in other languages: the command is started with the
federation's coordinates in its environment (``AMQP_URL``, ``FEDMQ_NAMESPACE``,
``FEDMQ_WORKER_ID``, ``FEDMQ_NUM_PARTITIONS``, ``FEDMQ_PARTITION_INDEX``), the
aggregator runs the built-in task (docs/protocol.md, section 8), and everything the
worker publishes is checked against docs/protocol.md. Exit code 0 when every rule
was kept, 1 otherwise.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from aggregator.settings import AggregatorSettings
from broker.settings import BrokerSettings
from runtime.cliargs import CliError, add_settings_arguments, settings_from_args


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument(
        "--strategy",
        choices=["fedasync", "fedbuff"],
        default="fedasync",
        help="fedasync (the worker sends weights) or fedbuff (it sends deltas); default fedasync.",
    )
    parser.add_argument("--versions", type=int, default=10, help="Versions to run (default 10).")
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="Give up after this long (default 120)."
    )
    parser.add_argument(
        "--worker-id", default="conformance-worker", help="The id the worker is given."
    )
    parser.add_argument("worker_command", nargs=argparse.REMAINDER, help="-- CMD [ARG ...]")
    add_settings_arguments(parser, BrokerSettings, skip={"namespace"})
    return run


def _settings(args: argparse.Namespace, tmp: Path) -> AggregatorSettings:
    broker = settings_from_args(BrokerSettings, args)
    fields = broker.model_dump(include=set(BrokerSettings.model_fields) - {"namespace"})
    return AggregatorSettings(
        **fields,
        namespace=f"conformance-{uuid.uuid4().hex[:8]}",
        strategy=args.strategy,
        buffer_size=2,
        num_partitions=1,
        max_versions=args.versions,
        max_seconds=args.max_seconds,
        run_dir=str(tmp / "run"),
        state_dir=str(tmp / "state"),
    )


def run(args: argparse.Namespace) -> int:
    from fedmq.conformance.rules import judge
    from fedmq.conformance.run import observe

    given = list(args.worker_command)
    command = given[1:] if given[:1] == ["--"] else given
    if not command:
        raise CliError(
            "give the worker command after --, e.g. fedmq conformance -- python -m worker"
        )
    with tempfile.TemporaryDirectory(prefix="fedmq-conformance-") as tmp:
        settings = _settings(args, Path(tmp))
        print(f"fedmq conformance: {' '.join(command)} on {settings.namespace} ({args.strategy})")
        with open(Path(tmp) / "worker.log", "w+b") as log:
            verdicts = judge(observe(settings, command, worker_id=args.worker_id, log=log))
            log.seek(0)
            tail = log.read().decode(errors="replace").splitlines()[-15:]
    for v in verdicts:
        print(f"  {'KEPT  ' if v.kept else 'BROKEN'}  {v.rule}: {v.detail}")
    broken = sum(not v.kept for v in verdicts)
    print(f"{len(verdicts) - broken} rules kept, {broken} broken")
    if broken:
        print("last lines of the worker's output:", *tail, sep="\n  ")
    return 1 if broken else 0
