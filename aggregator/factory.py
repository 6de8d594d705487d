"""Build the strategy and the workers' training configuration from settings."""

from __future__ import annotations

from aggregator.robust import NormBound
from aggregator.robust_strategy import RobustFedBuff
from aggregator.settings import AggregatorSettings
from aggregator.staleness import staleness_function
from aggregator.strategy import FedAsync, FedBuff, Strategy
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
    if settings.aggregation != "mean":
        return RobustFedBuff(
            rule=settings.aggregation,
            buffer_size=settings.buffer_size,
            server_lr=settings.server_lr,
            staleness=staleness,
            trim_fraction=settings.trim_fraction,
        )
    return FedBuff(
        buffer_size=settings.buffer_size,
        server_lr=settings.server_lr,
        staleness=staleness,
        sample_weighting=settings.sample_weighting is not False,
    )


def build_norm_bound(settings: AggregatorSettings) -> NormBound | None:
    """The configured norm bound, or ``None`` when it is off."""
    if settings.norm_bound is None:
        return None
    return NormBound(factor=settings.norm_bound, action=settings.norm_action, window=settings.norm_window)


def train_config(settings: AggregatorSettings, strategy: Strategy) -> TrainConfig:
    """What every model version tells workers to do."""
    return TrainConfig(
        update_kind=strategy.update_kind,
        local_epochs=settings.local_epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
    )
