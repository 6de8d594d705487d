"""``fedmq worker``."""

from __future__ import annotations

import argparse
import logging
from typing import Callable

from fedmq.cliargs import add_settings_arguments, settings_from_args
from worker.settings import WorkerSettings


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    add_settings_arguments(parser, WorkerSettings)
    parser.add_argument("--log-json", action="store_true", help="Log JSON lines instead of text.")
    return run


def run(args: argparse.Namespace) -> int:
    from fedmq.memory import tune_allocator
    from fedmq.runtime import configure_logging, load_trainer, stop_on_signals
    from worker.service import WorkerService

    settings = settings_from_args(WorkerSettings, args)
    tune_allocator()
    configure_logging(settings.log_level, json_logs=args.log_json)
    trainer = load_trainer(settings, role="worker", partition=settings.partition_index, seed=settings.data_seed)
    stop = stop_on_signals()
    stats = WorkerService(settings, trainer, stop=stop).run()
    logging.getLogger("fedmq.worker").info(
        "worker %s stopped (%s): %d updates confirmed, %d models received",
        settings.worker_id,
        stats.stopped_because,
        stats.updates_confirmed,
        stats.models_received,
    )
    return 0
