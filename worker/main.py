"""The worker's command: ``fedmq worker`` and ``python -m worker``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from runtime.cliargs import add_settings_arguments, settings_from_args
from worker.settings import WorkerSettings

log = logging.getLogger("fedmq.worker")


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    add_settings_arguments(parser, WorkerSettings)
    return run


def run(args: argparse.Namespace) -> int:
    from runtime.memory import tune_allocator
    from runtime.observability import describe_settings, serve_metrics
    from runtime.process import configure_logging, stop_on_signals
    from training.loading import load_trainer
    from worker.metrics import WorkerMetrics
    from worker.service import WorkerService

    settings = settings_from_args(WorkerSettings, args)
    tune_allocator()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    log.info("fedmq worker starting: %s", describe_settings(settings))

    def trainer_for(partition: int):  # type: ignore[no-untyped-def]
        return load_trainer(settings, role="worker", partition=partition)

    trainer = None if settings.claim_partition else trainer_for(settings.partition_index)
    stop = stop_on_signals()
    metrics = WorkerMetrics()
    server = serve_metrics(metrics.registry, settings)
    try:
        stats = WorkerService(
            settings, trainer, stop=stop, trainer_for=trainer_for, metrics=metrics
        ).run()
    finally:
        if server is not None:
            server.close()
    log.info(
        "worker %s stopped (%s): %d updates confirmed, %d models received",
        settings.worker_id,
        stats.stopped_because,
        stats.updates_confirmed,
        stats.models_received,
    )
    return 0
