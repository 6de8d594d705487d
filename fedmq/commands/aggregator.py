"""``fedmq aggregator``."""

from __future__ import annotations

import argparse
from typing import Callable

from aggregator.settings import AggregatorSettings
from fedmq.cliargs import add_settings_arguments, settings_from_args


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    add_settings_arguments(parser, AggregatorSettings)
    parser.add_argument("--log-json", action="store_true", help="Log JSON lines instead of text.")
    return run


def run(args: argparse.Namespace) -> int:
    from aggregator.service import AggregatorService
    from fedmq.memory import tune_allocator
    from fedmq.runtime import configure_logging, load_trainer, stop_on_signals

    settings = settings_from_args(AggregatorSettings, args)
    tune_allocator()
    configure_logging(settings.log_level, json_logs=args.log_json)
    trainer = load_trainer(settings, role="aggregator", partition=0, seed=settings.seed)
    stop = stop_on_signals()
    summary = AggregatorService(settings, trainer, stop=stop).run()
    return 0 if summary.stopped_because else 1
