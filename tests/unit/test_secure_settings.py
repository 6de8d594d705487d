"""What secure aggregation refuses at start: settings that cannot work, said in one line."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.factory import build_strategy, check_secure_message_size, train_config
from aggregator.settings import AggregatorSettings


def secure(**overrides: object) -> AggregatorSettings:
    fields = {"strategy": "fedbuff", "secure_aggregation": True, "identity": "strict"}
    return AggregatorSettings(**{**fields, **overrides})  # type: ignore[arg-type]


def test_a_masked_vector_above_the_chunk_size_is_refused_at_start() -> None:
    # A masked vector travels as one message (it is not chunked): 4 bytes per parameter.
    weights = {"w": np.zeros(1_000_000, dtype=np.float32)}

    with pytest.raises(ValueError, match="--chunk-bytes"):
        check_secure_message_size(secure(chunk_bytes=2 * 1024 * 1024), weights)


def test_a_masked_vector_within_the_chunk_size_is_accepted() -> None:
    weights = {"w": np.zeros(1_000_000, dtype=np.float32)}

    check_secure_message_size(secure(), weights)  # 4 MB under the default 15 MiB
    check_secure_message_size(AggregatorSettings(chunk_bytes=1024 * 1024), weights)  # not secure


def test_workers_are_told_to_mask_exactly_when_the_strategy_is_secure() -> None:
    secure_settings, plain = secure(), AggregatorSettings(strategy="fedbuff")

    assert train_config(secure_settings, build_strategy(secure_settings)).secure_aggregation
    assert not train_config(plain, build_strategy(plain)).secure_aggregation
