"""``fedmq simulate``: the configured strategy and trainer on a virtual clock, thousands of clients
on one core.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from runtime.cliargs import add_settings_arguments, settings_from_args
from simulator.result import SimulationResult
from simulator.settings import SERVICE_ONLY, SimulationSettings

DEFAULT_MAX_VERSIONS = 300


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    add_settings_arguments(parser, SimulationSettings, skip=set(SERVICE_ONLY) | {"log_level"})
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
    return run


def run(args: argparse.Namespace) -> int:
    from simulator.engine import simulate

    stops = ("max_versions", "max_seconds", "target_accuracy", "max_updates")
    defaults = (
        {} if any(getattr(args, k, None) for k in stops) else {"max_versions": DEFAULT_MAX_VERSIONS}
    )
    settings = settings_from_args(SimulationSettings, args, **defaults)
    result = simulate(settings)
    if settings.output:
        Path(settings.output).write_text(json.dumps(result.as_dict(), indent=2))
    if args.json:
        print(json.dumps({k: v for k, v in result.as_dict().items() if k != "curve"}))
        return 0
    print_result(settings, result)
    return 0


def print_result(settings: SimulationSettings, result: SimulationResult) -> None:
    acc = f"{result.accuracy:.4f}" if result.accuracy is not None else "n/a"
    ttt = f"{result.time_to_target:.2f} s" if result.time_to_target is not None else "not reached"
    task = f"{settings.dataset}/{settings.model}" if settings.trainer == "builtin" else ""
    rows = [
        (
            "strategy",
            f"{settings.strategy} ({task or settings.trainer}, {settings.workload} workload)",
        ),
        ("clients", result.clients),
        ("stopped because", result.stopped_because),
        ("virtual time", f"{result.virtual_seconds:.2f} s"),
        ("wall-clock time", f"{result.wall_seconds:.2f} s"),
        ("final version", result.version),
        ("test accuracy", acc),
        ("time to target", ttt if settings.target_accuracy else "n/a"),
        ("updates handled", result.handled),
        ("updates / virtual s", f"{result.updates_per_virtual_second:.2f}"),
        ("rejected", sum(result.rejected.values())),
        ("staleness mean / max", f"{result.staleness_mean} / {result.staleness_max}"),
        ("stale updates applied", f"{100 * result.stale_share:.1f} %"),
    ]
    print("=" * 64)
    print(" fedmq simulate")
    print("=" * 64)
    for key, value in rows:
        print(f" {key:<24} {value}")
    print("=" * 64)
