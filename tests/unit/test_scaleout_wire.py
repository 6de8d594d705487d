"""The scale-out wire messages: round trips, and what validation refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from aggregator.scaleout.state import RootState, load, save
from schemas.codec import decode, encode
from schemas.errors import DecodeError
from schemas.scaleout import (
    MAX_STEP,
    EdgeOffer,
    EdgePartial,
    EdgeShare,
    StepPlanMessage,
    StepsApplied,
)

IDS = ("update-0001", "update-0002")


def test_each_kind_round_trips_through_the_codec() -> None:
    messages = [
        EdgeOffer(edge="edge-0", update_ids=IDS),
        StepPlanMessage(version=3, assigned=(EdgeShare(edge="edge-1", update_ids=IDS),)),
        EdgePartial(edge="edge-1", version=3, update_ids=IDS, mass=7, arrays={"w": np.arange(4)}),
        StepsApplied(version=3, update_ids=IDS, final=True),
    ]

    decoded = [decode(encode(m)) for m in messages]

    assert [type(d) for d in decoded] == [type(m) for m in messages]
    assert decoded[2].arrays["w"].tolist() == [0, 1, 2, 3]  # type: ignore[attr-defined]
    assert decoded[1] == messages[1] and decoded[3] == messages[3]


def test_an_id_twice_in_one_plan_is_refused_even_across_edges() -> None:
    with pytest.raises(ValidationError):
        StepPlanMessage(
            version=1,
            assigned=(
                EdgeShare(edge="edge-0", update_ids=IDS[:1]),
                EdgeShare(edge="edge-1", update_ids=IDS[:1]),
            ),
        )


def test_a_plan_beyond_the_exact_buffers_bound_is_refused() -> None:
    ids = tuple(f"update-{i:06d}" for i in range(MAX_STEP + 1))
    with pytest.raises(ValidationError):
        StepPlanMessage(version=1, assigned=(EdgeShare(edge="edge-0", update_ids=ids),))


def test_a_partial_of_floats_is_refused_on_decode() -> None:
    body = encode(
        EdgePartial(edge="edge-0", version=1, update_ids=IDS, mass=1, arrays={"w": np.arange(2)})
    ).replace(b"int64", b"float64")  # same width: only the dtype name differs

    with pytest.raises(DecodeError):
        decode(body)


def test_the_checkpoint_keeps_model_and_step_log_together(tmp_path: Path) -> None:
    model = {"w": np.linspace(0, 1, 5, dtype=np.float32)}
    state = RootState(model, [["a-000001", "a-000002"], ["a-000003"]])

    save(tmp_path, state)
    back = load(tmp_path, {"w": np.zeros(5, np.float32)})

    assert back.version == 2 and back.steps == state.steps
    assert back.model["w"].tobytes() == model["w"].tobytes()
    assert back.applied() == {"a-000001", "a-000002", "a-000003"}
