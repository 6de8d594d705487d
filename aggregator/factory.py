"""Build the strategy and the workers' training configuration from settings."""

from __future__ import annotations

from aggregator.settings import AggregatorSettings
from aggregator.staleness import staleness_function
from aggregator.strategy import FedAsync, FedBuff, Strategy
from aggregator.synchronous import FedAvg
from schemas.messages import TrainConfig


def build_strategy(settings: AggregatorSettings) -> Strategy:
    """The configured strategy with its staleness function."""
    staleness = staleness_function(settings.staleness, a=settings.staleness_a, b=settings.staleness_b)
    if settings.strategy == "fedasync":
        return FedAsync(
            alpha=settings.alpha,
            staleness=staleness,
            sample_weighting=bool(settings.sample_weighting),
        )
    if settings.strategy == "fedavg":
        return FedAvg(
            server_lr=settings.server_lr,
            sample_weighting=settings.sample_weighting is not False,
            min_updates=settings.round_min_workers,
        )
    return FedBuff(
        buffer_size=settings.buffer_size,
        server_lr=settings.server_lr,
        staleness=staleness,
        sample_weighting=settings.sample_weighting is not False,
    )


def train_config(settings: AggregatorSettings, strategy: Strategy) -> TrainConfig:
    """What every model version tells workers to do."""
    return TrainConfig(
        update_kind=strategy.update_kind,
        local_epochs=settings.local_epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        synchronous=strategy.name == "fedavg",
    )
