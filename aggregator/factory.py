"""Build the strategy and the workers' training configuration from settings."""

from __future__ import annotations

from aggregator.core.aggregator import Aggregator
from aggregator.core.distributed_dp import DistributedConfig, DistributedPrivacy
from aggregator.core.examples import ExampleCap
from aggregator.core.fedasync import FedAsync
from aggregator.core.fedavg import FedAvg
from aggregator.core.fedbuff import FedBuff
from aggregator.core.identity import IdentityPolicy, Roster
from aggregator.core.private import PrivacyConfig, PrivateStrategy
from aggregator.core.reputation_fedbuff import ReputationFedBuff
from aggregator.core.robust import NormBound
from aggregator.core.robust_fedbuff import RobustFedBuff
from aggregator.core.secure_fedbuff import SecureFedBuff
from aggregator.core.staleness import StalenessFunction, staleness_function
from aggregator.core.state import AggregatorState
from aggregator.core.strategy import Strategy
from aggregator.settings import AggregatorSettings
from privacy.adaptive import default_count_stddev
from privacy.noise import entropy_generator
from privacy.participation import Budget
from schemas.messages import Compression, TrainConfig
from secagg.skellam import SkellamNoise, noisy_fixed_point
from training.weights import Weights, dimension


def check_combination(settings: AggregatorSettings) -> None:
    """Refuse settings that do not go together (``ValueError``, shown as one line)."""
    robust = settings.aggregation != "mean"
    if robust and settings.strategy != "fedbuff":
        raise ValueError(
            f"--aggregation {settings.aggregation} needs --strategy fedbuff (it combines a buffer)"
        )
    if settings.dp != "off" and settings.strategy == "fedavg":
        raise ValueError(
            "--dp works with --strategy fedbuff or fedasync, not the synchronous fedavg"
        )
    if settings.dp != "off" and robust:
        raise ValueError(
            f"--aggregation {settings.aggregation} cannot be combined with --dp (the clip does not "
            "bound its sensitivity)"
        )


def check_secure_combination(settings: AggregatorSettings) -> None:
    """Secure aggregation sums masked inputs: nothing that must see an update can go with it."""
    if not settings.secure_aggregation:
        return
    refusals = {
        "--secure-aggregation needs --strategy fedbuff": settings.strategy != "fedbuff",
        "--secure-aggregation needs strict identity (keys are bound to broker-validated users)": (
            settings.identity_mode() != "strict"
        ),
        f"--secure-aggregation cannot be combined with --dp {settings.dp} (the aggregator never "
        "sees an update to clip or noise): use --dp distributed": (
            settings.dp in ("central", "local")
        ),
        "--secure-aggregation cannot be combined with --norm-bound or --aggregation "
        "median/trimmed-mean (they must see individual updates)": (
            settings.norm_bound is not None or settings.aggregation != "mean"
        ),
        "--secure-aggregation needs --buffer-size of at least 2": settings.buffer_size < 2,
        "--secure-cohort-size must be at least --buffer-size": (
            settings.secure_cohort_size < settings.buffer_size
        ),
    }
    for message, refused in refusals.items():
        if refused:
            raise ValueError(message)


#: What a masked upload's message adds to its vector of 4 bytes per parameter, at most.
MASKED_UPLOAD_OVERHEAD = 4096


def check_secure_message_size(settings: AggregatorSettings, weights: Weights) -> None:
    """A worker's masked vector travels as one message, never in chunks: refuse a model whose
    vector would not fit ``chunk_bytes`` (which must stay within the broker's message size limit).
    """
    if not settings.secure_aggregation:
        return
    needed = 4 * dimension(weights) + MASKED_UPLOAD_OVERHEAD
    if needed > settings.chunk_bytes:
        raise ValueError(
            f"--secure-aggregation sends a worker's masked vector as one message, not in chunks: "
            f"{dimension(weights)} parameters need {needed} bytes, above --chunk-bytes "
            f"{settings.chunk_bytes}; raise --chunk-bytes (on every process, and at most the "
            "broker's max_message_size) or use a smaller model"
        )


def check_release_size(settings: AggregatorSettings, roster: Roster | None) -> None:
    """DP FedBuff takes each worker once per release: refuse K above the provisioned workers.

    (The settings already refuse K above ``--num-partitions``; a roster is the firmer count.)
    """
    if settings.dp != "central" or settings.strategy != "fedbuff" or roster is None:
        return
    if len(roster.active) < settings.buffer_size:
        raise ValueError(
            f"DP FedBuff takes each worker once per release: --buffer-size "
            f"{settings.buffer_size} needs at least {settings.buffer_size} provisioned workers "
            f"(the roster lists {len(roster.active)})"
        )


def build_strategy(settings: AggregatorSettings) -> Strategy:
    """The configured strategy with its staleness function, made private if ``--dp`` is on."""
    check_combination(settings)
    check_secure_combination(settings)
    if settings.secure_aggregation:
        return build_secure(settings)
    private = settings.dp != "off"
    inner = _plain_strategy(settings, private)
    return build_private(settings, inner) if private else inner


def build_secure(settings: AggregatorSettings) -> SecureFedBuff:
    """Secure FedBuff; with ``--dp distributed`` its buffers carry the workers' Skellam noise."""
    distributed = settings.dp == "distributed"
    privacy = None
    if distributed:
        privacy = DistributedPrivacy(
            DistributedConfig(
                noise_multiplier=settings.dp_noise_multiplier,
                clip=settings.dp_clip,
                min_contributors=settings.buffer_size,
                budget=Budget(settings.target_epsilon, settings.target_delta),
                accountant=settings.dp_accountant,
            )
        )
    return SecureFedBuff(
        buffer_size=settings.buffer_size,
        cohort_size=settings.secure_cohort_size,
        clip=settings.dp_clip if distributed else settings.secure_clip,
        server_lr=settings.server_lr,
        dropout_rate=settings.secure_dropout_rate,
        privacy=privacy,
    )


def check_noise_fits(settings: AggregatorSettings, weights: Weights) -> None:
    """Distributed DP: refuse to start when the workers' noise cannot fit the fixed point of the
    largest cohort (a smaller cohort leaves each summand more room)."""
    if settings.dp != "distributed":
        return
    noise = SkellamNoise(settings.dp_noise_multiplier, settings.buffer_size)
    try:
        noisy_fixed_point(settings.dp_clip, settings.secure_cohort_size, dimension(weights), noise)
    except ValueError as exc:
        raise ValueError(
            f"--dp distributed: {exc}; lower --dp-noise-multiplier or --secure-cohort-size, or "
            "raise --buffer-size"
        ) from exc


def _plain_strategy(settings: AggregatorSettings, private: bool) -> Strategy:
    staleness = staleness_function(
        settings.staleness, a=settings.staleness_a, b=settings.staleness_b
    )
    if settings.strategy == "fedasync":
        return FedAsync(
            alpha=settings.alpha,
            staleness=staleness,
            sample_weighting=bool(settings.sample_weighting),
            update_kind="delta" if private else "weights",
            fair_share=settings.fair_share,
        )
    if settings.strategy == "fedavg":
        return FedAvg(
            server_lr=settings.server_lr,
            sample_weighting=bool(settings.sample_weighting),
            min_updates=settings.round_min_workers,
        )
    if settings.aggregation != "mean":
        return _robust_fedbuff(settings, staleness)
    return FedBuff(
        buffer_size=settings.buffer_size,
        server_lr=settings.server_lr,
        staleness=staleness,
        sample_weighting=bool(settings.sample_weighting) and not private,
    )


def _robust_fedbuff(settings: AggregatorSettings, staleness: StalenessFunction) -> Strategy:
    """FedBuff with the robust ``--aggregation`` rule (not ``mean``)."""
    if settings.aggregation == "mean":
        raise ValueError("--aggregation mean is plain FedBuff, not a robust rule")
    if settings.aggregation == "reputation":
        return ReputationFedBuff(
            buffer_size=settings.buffer_size,
            server_lr=settings.server_lr,
            staleness=staleness,
            clip_iterations=settings.clip_iterations,
        )
    return RobustFedBuff(
        rule=settings.aggregation,
        buffer_size=settings.buffer_size,
        server_lr=settings.server_lr,
        staleness=staleness,
        trim_fraction=settings.trim_fraction,
        byzantine=settings.krum_byzantine,
        clip_iterations=settings.clip_iterations,
    )


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
    return PrivateStrategy(
        inner, config, entropy_generator(settings.dp_seed), per_release=per_release
    )


def build_norm_bound(settings: AggregatorSettings) -> NormBound | None:
    """The configured norm bound, or ``None`` when it is off."""
    if settings.norm_bound is None:
        return None
    return NormBound(
        factor=settings.norm_bound,
        action=settings.norm_action,
        window=settings.norm_window,
        clip_to=None
        if settings.norm_clip is None
        else min(settings.norm_clip, settings.norm_bound),
        min_workers=settings.num_partitions // 2 + 1,  # a majority of the expected workers
    )


def build_example_cap(settings: AggregatorSettings) -> ExampleCap | None:
    """The cap on self-reported example counts; ``None`` with unit weights (nothing to cap)."""
    return ExampleCap(factor=settings.example_cap) if settings.sample_weighting else None


def build_core(
    settings: AggregatorSettings,
    state: AggregatorState,
    strategy: Strategy,
    identity: IdentityPolicy | None = None,
) -> Aggregator:
    """The functional core with the configured defences."""
    return Aggregator(
        state,
        strategy,
        max_staleness=settings.max_staleness,
        identity=identity or IdentityPolicy(),
        norm_bound=build_norm_bound(settings),
        examples=build_example_cap(settings),
        compression=compression_of(settings),
    )


def train_config(settings: AggregatorSettings, strategy: Strategy) -> TrainConfig:
    """What every model version tells workers to do (with DP: how to clip, and local noise)."""
    return TrainConfig(
        update_kind=strategy.update_kind,
        local_epochs=settings.local_epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        synchronous=strategy.synchronous,
        privacy=strategy.client_privacy(),
        secure_aggregation=strategy.secure_aggregation,
        compression=compression_of(settings),
        max_staleness=settings.max_staleness,
    )


def compression_of(settings: AggregatorSettings) -> Compression:
    """How workers are to encode their updates."""
    return Compression(mode=settings.compression, topk_fraction=settings.topk_fraction)
