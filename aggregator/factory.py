"""Build the strategy and the workers' training configuration from settings."""

from __future__ import annotations

from aggregator.private import PrivacyConfig, PrivateStrategy
from aggregator.settings import AggregatorSettings
from aggregator.staleness import staleness_function
from aggregator.strategy import FedAsync, FedBuff, Strategy
from aggregator.synchronous import FedAvg
from privacy.adaptive import default_count_stddev
from privacy.noise import entropy_generator
from privacy.participation import Budget
from schemas.messages import TrainConfig


def build_strategy(settings: AggregatorSettings) -> Strategy:
    """The configured strategy with its staleness function, made private if ``--dp`` is on."""
    staleness = staleness_function(settings.staleness, a=settings.staleness_a, b=settings.staleness_b)
    private = settings.dp != "off"
    if settings.strategy == "fedasync":
        inner: Strategy = FedAsync(
            alpha=settings.alpha,
            staleness=staleness,
            sample_weighting=bool(settings.sample_weighting),
            update_kind="delta" if private else "weights",
        )
    elif settings.strategy == "fedavg":
        if private:
            raise ValueError("--dp works with --strategy fedbuff or fedasync, not the synchronous fedavg")
        inner = FedAvg(
            server_lr=settings.server_lr,
            sample_weighting=settings.sample_weighting is not False,
            min_updates=settings.round_min_workers,
        )
    else:
        inner = FedBuff(
            buffer_size=settings.buffer_size,
            server_lr=settings.server_lr,
            staleness=staleness,
            sample_weighting=settings.sample_weighting is not False and not private,
        )
    return build_private(settings, inner) if private else inner


def build_private(settings: AggregatorSettings, inner: Strategy) -> PrivateStrategy:
    """Wrap ``inner`` in user-level DP as configured (noise from OS entropy unless seeded)."""
    per_release = settings.buffer_size if settings.strategy == "fedbuff" else 1
    config = PrivacyConfig(
        mode=settings.dp,  # type: ignore[arg-type]
        clip=settings.dp_clip,
        noise_multiplier=settings.dp_noise_multiplier,
        budget=Budget(settings.target_epsilon, settings.target_delta),
        accountant=settings.dp_accountant,
        adaptive=settings.dp_adaptive_clip,
        target_quantile=settings.dp_target_quantile,
        clip_learning_rate=settings.dp_clip_learning_rate,
        count_stddev=settings.dp_count_stddev or default_count_stddev(per_release),
        client_clip=settings.dp_client_clip,
    )
    return PrivateStrategy(inner, config, entropy_generator(settings.dp_seed), per_release=per_release)


def train_config(settings: AggregatorSettings, strategy: Strategy) -> TrainConfig:
    """What every model version tells workers to do (with DP: how to clip, and noise in local mode)."""
    extra = strategy.worker_instructions() if isinstance(strategy, PrivateStrategy) else {}
    return TrainConfig(
        update_kind=strategy.update_kind,
        local_epochs=settings.local_epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        synchronous=strategy.name == "fedavg",
        extra=dict(extra),
    )
