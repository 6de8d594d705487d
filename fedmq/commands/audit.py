"""``fedmq audit RUN_DIR``: was any confirmed update lost or applied twice? (checks in
``fedmq.audit``)
"""

from __future__ import annotations

import argparse
import glob
import json
from collections.abc import Callable
from pathlib import Path

from aggregator.shell.checkpoint import CheckpointError, load_checkpoint
from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.names import Names
from broker.properties import REASON_HEADER
from broker.settings import BrokerSettings
from fedmq.audit import RunEvidence, check_run, confirmed_ids
from runtime.cliargs import CliError, add_settings_arguments, settings_from_args
from runtime.eventlog import read_events

AUDIT_LOG = "audit.jsonl"
WORKER_EVENTS = "*.events.jsonl"


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument(
        "run_dir",
        help="The aggregator's run directory (audit.jsonl, state/, worker *.events.jsonl).",
    )
    parser.add_argument(
        "--events",
        action="append",
        help="Worker event logs, a path or glob (repeatable; default RUN_DIR/*.events.jsonl).",
    )
    parser.add_argument(
        "--state-dir", help="The aggregator's checkpoint directory (default RUN_DIR/state)."
    )
    parser.add_argument(
        "--check-queues",
        action="store_true",
        help=(
            "Also peek at the federation's results and dead-letter queues for updates still "
            "waiting there. "
            "Stop the aggregator first; each peek counts as a delivery towards the delivery limit."
        ),
    )
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    add_settings_arguments(parser, BrokerSettings)
    return run


def worker_event_files(run_dir: Path, patterns: list[str] | None) -> list[Path]:
    found = {
        Path(p)
        for pattern in patterns or [str(run_dir / WORKER_EVENTS)]
        for p in glob.glob(pattern)
    }
    return sorted(found)


def waiting(session: AmqpSession, queue: str, *, single_active: bool = False) -> list[Delivery]:
    """Every ready message of ``queue``, put back (on a quorum queue that counts as a delivery).

    A queue with a single active consumer refuses ``basic.get``: it is browsed by consuming.
    """
    ready = session.queue_counts(queue)[0]
    return session.browse(queue, ready) if single_active else session.peek(queue, ready)


def queue_contents(settings: BrokerSettings) -> tuple[list[str], dict[str, str]]:
    """Ids waiting in the results queue, and dead-lettered ids with their reasons."""
    names = Names(settings.namespace)
    with AmqpSession(settings, name="fedmq-audit") as session:
        queued = [
            d.properties.message_id or ""
            for d in waiting(session, names.results_queue, single_active=True)
        ]
        dead = {}
        for d in waiting(session, names.dead_queue):
            headers = d.properties.headers
            reason = headers.get(REASON_HEADER) or headers.get("x-first-death-reason") or "unknown"
            dead[d.properties.message_id or ""] = str(reason)
    return queued, dead


def gather_evidence(
    run_dir: Path,
    *,
    event_files: list[Path],
    state_dir: Path | None = None,
    queues: tuple[list[str], dict[str, str]] = ([], {}),
) -> RunEvidence:
    """Read the audit log, the workers' logs and the final checkpoint of a run."""
    audit_path = run_dir / AUDIT_LOG
    if not audit_path.exists():
        raise CliError(f"{audit_path} does not exist: is {run_dir} an aggregator's run directory?")
    try:
        loaded = load_checkpoint(state_dir or run_dir / "state")
    except CheckpointError as exc:
        raise CliError(str(exc)) from None
    state = loaded[0] if loaded else None
    return RunEvidence(
        audit=list(read_events(audit_path)),
        confirmed=[u for path in event_files for u in confirmed_ids(read_events(path))],
        queued=queues[0],
        dead=queues[1],
        final_commit=state.commit if state else None,
        final_applied=state.counters.applied if state else None,
    )


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    queues: tuple[list[str], dict[str, str]] = ([], {})
    if args.check_queues:
        queues = queue_contents(settings_from_args(BrokerSettings, args, connect_attempts=1))
    evidence = gather_evidence(
        run_dir,
        event_files=worker_event_files(run_dir, args.events),
        state_dir=Path(args.state_dir) if args.state_dir else None,
        queues=queues,
    )
    report = check_run(evidence)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": report.ok,
                    "problems": report.problems,
                    "fates": dict(report.fates),
                    "applied": report.applied,
                }
            )
        )
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1
