"""How an operator turns distributed DP on, and the combinations it refuses in one line."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from aggregator.core.secure_fedbuff import SecureFedBuff
from aggregator.factory import build_strategy, check_noise_fits
from aggregator.settings import AggregatorSettings


def distributed(**overrides: object) -> AggregatorSettings:
    fields = {
        "strategy": "fedbuff",
        "secure_aggregation": True,
        "identity": "strict",
        "dp": "distributed",
        "buffer_size": 4,
    }
    return AggregatorSettings(**{**fields, **overrides})  # type: ignore[arg-type]


def refusal(**overrides: object) -> str:
    with pytest.raises((ValidationError, ValueError)) as refused:
        build_strategy(distributed(**overrides))
    text = str(refused.value)
    if isinstance(refused.value, ValidationError):
        text = refused.value.errors()[0]["msg"]
    return text


def test_dp_distributed_builds_secure_fedbuff_with_the_accountant() -> None:
    strategy = build_strategy(distributed(dp_noise_multiplier=0.8, dp_clip=2.0))
    assert isinstance(strategy, SecureFedBuff) and strategy.privacy is not None
    assert strategy.privacy.config.noise_multiplier == 0.8
    assert strategy.clip == 2.0  # workers clip to --dp-clip
    report = strategy.privacy_report()
    assert report is not None and report.mode == "distributed" and report.epsilon == 0.0


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"secure_aggregation": False}, "--dp distributed needs --secure-aggregation"),
        ({"dp_noise_multiplier": 0.0}, "needs --dp-noise-multiplier above 0"),
        ({"secure_clip": 3.0}, "drop --secure-clip"),
        ({"dp_client_clip": True}, "drop --dp-client-clip"),
        ({"dp_seed": 3}, "drop --dp-seed"),
        ({"dp_adaptive_clip": True}, "adaptive clipping needs"),
        ({"target_epsilon": 5.0, "checkpoint": False}, "needs checkpointing"),
        ({"identity": "open"}, "strict identity"),
    ],
)
def test_combinations_that_void_the_guarantee_are_refused(
    overrides: dict[str, object], says: str
) -> None:
    text = refusal(**overrides)
    assert says in text and "\n" not in text.strip()


@pytest.mark.parametrize("mode", ["central", "local"])
def test_central_and_local_dp_are_refused_with_secure_aggregation(mode: str) -> None:
    assert "use --dp distributed" in refusal(dp=mode)


def test_a_secure_clip_equal_to_the_dp_clip_is_accepted() -> None:
    assert isinstance(build_strategy(distributed(secure_clip=1.0, dp_clip=1.0)), SecureFedBuff)


def test_noise_that_cannot_fit_the_fixed_point_is_refused_at_start() -> None:
    weights = {"w": np.zeros(1_000_000, dtype=np.float32)}
    with pytest.raises(ValueError, match="lower --dp-noise-multiplier") as refused:
        check_noise_fits(distributed(dp_noise_multiplier=900.0, buffer_size=2), weights)
    assert "\n" not in str(refused.value)
    check_noise_fits(distributed(), weights)  # z = 1, K = 4: fits
