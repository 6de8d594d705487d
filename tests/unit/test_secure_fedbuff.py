"""Secure FedBuff in the core: a buffer's step is the mean of the survivors' clipped deltas (within
the fixed-point error), every message crossing the wire codec; aborts step nothing; checkpoints."""

from __future__ import annotations

import json
from typing import TypeVar

import numpy as np
import pytest

from aggregator.core.secure_fedbuff import SecureFedBuff
from schemas.codec import decode, encode
from schemas.secure import SecureRound, SecureUpload
from secagg.client import SecAggClient
from secagg.errors import Aborted, Accepted
from secagg.ledger import BufferSum, Stage
from secagg.local import seeded_entropy
from secagg.messages import (
    AggregatorMessage,
    NeighbourKeys,
    ShareInbox,
    UnmaskRequest,
    WorkerMessage,
)
from secagg.quantize import clip_l2, decode_error_bound
from secagg.wire import addressed_to, message_of, round_message, setup_of, upload_of
from training.weights import flatten, unflatten

OnTheWire = TypeVar("OnTheWire", SecureRound, SecureUpload)

WORKERS = frozenset(f"w{i}" for i in range(5))


def model() -> dict[str, np.ndarray]:
    return {"W": np.zeros((4, 3), dtype=np.float32), "b": np.zeros(3, dtype=np.float32)}


def deltas(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    shapes = model()
    return {w: {n: rng.normal(0, 0.3, a.shape) for n, a in shapes.items()} for w in WORKERS}


def wire(message: OnTheWire) -> OnTheWire:
    return decode(encode(message), type(message))


def run(
    strategy: SecureFedBuff,
    weights: dict[str, np.ndarray],
    updates: dict[str, dict[str, np.ndarray]],
    *,
    drop_before_masking: frozenset[str] = frozenset(),
    checkpoint: bool = False,
) -> BufferSum | Aborted:
    setup = strategy.open_buffer(run_id="run-1", version=0, candidates=WORKERS, model=weights)
    assert setup is not None
    clients = {u: SecAggClient(setup, u, entropy=seeded_entropy(1, u)) for u in setup.cohort}
    messages: tuple[AggregatorMessage, ...] = ()
    for stage in ("keys", "shares", "masked", "unmask"):
        broadcast = wire(
            round_message(setup, run_id="run-1", version=0, stage=stage, messages=messages)
        )
        assert setup_of(broadcast) == setup
        for u, client in clients.items():
            if stage in ("masked", "unmask") and u in drop_before_masking:
                continue
            request = addressed_to(broadcast, u)
            answer: WorkerMessage
            if stage == "keys":
                answer = client.advertise_keys()
            elif request is None:
                continue
            elif stage == "shares":
                assert isinstance(request, NeighbourKeys)
                answer = client.share_keys(request)
            elif stage == "masked":
                assert isinstance(request, ShareInbox)
                answer = client.masked_input(request, flatten(updates[u], weights), 1.0)
            else:
                assert isinstance(request, UnmaskRequest)
                answer = client.unmask(request)
            receipt = strategy.receive(u, message_of(wire(upload_of(answer))))
            assert isinstance(receipt, Accepted), receipt
            if checkpoint:
                strategy = restored(strategy)
        result = strategy.advance(weights)
        if isinstance(result, BufferSum | Aborted):
            return result
        messages = result
    raise AssertionError("the buffer did not conclude")


def restored(strategy: SecureFedBuff) -> SecureFedBuff:
    scalars, arrays = strategy.state()
    copy = SecureFedBuff(buffer_size=3, cohort_size=5, clip=0.5)
    copy.restore(json.loads(json.dumps(scalars)), {n: np.array(a) for n, a in arrays.items()})
    return copy


def expected_step(updates: dict[str, dict[str, np.ndarray]], contributors: set[str]) -> np.ndarray:
    like = model()
    clipped = [clip_l2(flatten(updates[u], like), 0.5) for u in sorted(contributors)]
    return np.asarray(np.mean(clipped, axis=0))


@pytest.mark.parametrize("dropped", [frozenset(), frozenset({"w3"}), frozenset({"w1", "w4"})])
def test_a_buffer_steps_by_the_mean_of_the_survivors_clipped_deltas(
    dropped: frozenset[str],
) -> None:
    strategy = SecureFedBuff(buffer_size=3, cohort_size=5, clip=0.5, server_lr=1.0)
    weights, updates = model(), deltas()
    outcome = run(strategy, weights, updates, drop_before_masking=dropped)
    assert isinstance(outcome, BufferSum)
    assert set(outcome.contributors) == WORKERS - dropped
    step = flatten(weights, model())
    want = expected_step(updates, set(WORKERS - dropped))
    fixed = strategy.server.setup.fixed_point  # type: ignore[union-attr]
    bound = decode_error_bound(fixed, len(outcome.contributors)) / len(outcome.contributors)
    assert np.max(np.abs(step - want)) <= bound + 1e-6  # float32 model arithmetic
    assert np.max(np.abs(want)) > 100 * bound  # the check can tell a wrong sum from a right one
    assert strategy.is_closed() and strategy.completed == 1


def test_checkpoint_and_restore_after_every_message_gives_the_same_step() -> None:
    plain, restored_each = model(), model()
    updates = deltas(3)
    a = run(SecureFedBuff(buffer_size=3, cohort_size=5, clip=0.5), plain, updates)
    b = run(
        SecureFedBuff(buffer_size=3, cohort_size=5, clip=0.5),
        restored_each,
        updates,
        checkpoint=True,
    )
    assert isinstance(a, BufferSum) and isinstance(b, BufferSum)
    np.testing.assert_array_equal(flatten(plain, model()), flatten(restored_each, model()))


def test_below_the_buffer_size_the_buffer_aborts_and_the_model_is_unchanged() -> None:
    strategy = SecureFedBuff(buffer_size=4, cohort_size=5, clip=0.5)
    weights = model()
    outcome = run(strategy, weights, deltas(), drop_before_masking=frozenset({"w0", "w2"}))
    assert isinstance(outcome, Aborted)
    assert not np.any(flatten(weights, model()))
    assert strategy.aborted == 1 and strategy.is_closed()
    # The next buffer is a new attempt on the same version: a new id, fresh masks.
    again = strategy.open_buffer(run_id="run-1", version=0, candidates=WORKERS, model=weights)
    assert again is not None and again.buffer_id == "run-1.0.1"


def test_plaintext_updates_are_refused_and_no_buffer_opens_without_enough_workers() -> None:
    strategy = SecureFedBuff(buffer_size=3, cohort_size=5, clip=0.5)
    refusal = strategy.refuse("w0")
    assert refusal is not None and refusal.reason == "secure-aggregation-only"
    assert (
        strategy.open_buffer(
            run_id="r", version=0, candidates=frozenset({"w0", "w1"}), model=model()
        )
        is None
    )
    opened = strategy.open_buffer(run_id="r", version=0, candidates=WORKERS, model=model())
    assert opened is not None and opened.cohort == tuple(sorted(WORKERS))
    assert strategy.open_buffer(run_id="r", version=0, candidates=WORKERS, model=model()) is None
    assert strategy.server is not None and strategy.server.stage is Stage.KEYS


def test_flatten_and_unflatten_are_inverse_in_sorted_name_order() -> None:
    like = {"b": np.arange(3, dtype=np.float32), "a": np.arange(6, dtype=np.float32).reshape(2, 3)}
    vector = flatten(like, like)
    np.testing.assert_array_equal(vector, [0, 1, 2, 3, 4, 5, 0, 1, 2])
    back = unflatten(vector, like)
    assert back["a"].dtype == np.float32 and back["a"].shape == (2, 3)
    np.testing.assert_array_equal(back["b"], like["b"])
    with pytest.raises(ValueError):
        unflatten(np.zeros(4), like)
