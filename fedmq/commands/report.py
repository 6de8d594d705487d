"""``fedmq report RUN_DIR``: PNG figures and a markdown summary of a run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from runtime.cliargs import CliError


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="A run directory (metrics.jsonl, audit.jsonl, summary.json).",
    )
    parser.add_argument(
        "--out", default=None, help="Where to write the report (default RUN_DIR/report)."
    )
    return run


def run(args: argparse.Namespace) -> int:
    from fedmq.figures import draw_all
    from fedmq.reportmd import summary_markdown
    from fedmq.rundata import RunDirError, load_run

    try:
        data = load_run(args.run_dir)
    except RunDirError as exc:
        raise CliError(str(exc)) from None
    out = Path(args.out) if args.out else Path(args.run_dir) / "report"
    try:
        figures = draw_all(data, out)
    except RuntimeError as exc:  # matplotlib missing
        raise CliError(str(exc)) from None
    summary = out / "summary.md"
    summary.write_text(summary_markdown(data, figures, out))
    print(f"fedmq report: {summary}")
    for path in figures:
        print(f"  {path}")
    return 0
