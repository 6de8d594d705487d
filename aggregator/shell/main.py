"""The aggregator's command: ``fedmq aggregator`` and ``python -m aggregator``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from aggregator.core.identity import open_identity_refusal
from aggregator.settings import AggregatorSettings
from runtime.cliargs import add_settings_arguments, settings_from_args

log = logging.getLogger("fedmq.aggregator")


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    add_settings_arguments(parser, AggregatorSettings)
    return run


def run(args: argparse.Namespace) -> int:
    from aggregator.shell.lease import StateLock
    from aggregator.shell.observer import PrometheusObserver
    from aggregator.shell.service import AggregatorService
    from runtime.memory import tune_allocator
    from runtime.observability import describe_settings, serve_metrics
    from runtime.process import configure_logging, stop_on_signals
    from training.loading import load_trainer

    settings = settings_from_args(AggregatorSettings, args)
    refusal = open_identity_refusal(settings.identity_mode(), settings.identity_keyed_defences())
    if refusal and not settings.insecure_open_defences:
        raise ValueError(refusal)
    tune_allocator()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    log.info("fedmq aggregator starting: %s", describe_settings(settings))
    if settings.identity_mode() == "open":
        log.warning(
            "identity is OPEN: the broker vouches for no sender, so any worker can file updates "
            "as any other (%s)",
            refusal or "fine for the single-user guest demo; never for real workers",
        )
    trainer = load_trainer(settings, role="aggregator", partition=0, model_seed=settings.seed)
    stop = stop_on_signals()
    lock = StateLock(settings.state_path)
    if not lock.wait(stop):  # a standby, stopped before it took over
        return 0
    observer = PrometheusObserver()
    server = serve_metrics(observer.registry, settings)
    try:
        summary = AggregatorService(settings, trainer, stop=stop, observer=observer).run()
    finally:
        if server is not None:
            server.close()
        lock.release()
    return 0 if summary.stopped_because else 1
