"""SecAgg+ end to end: the unmasked sum is the plaintext weighted sum within the quantization error,
whatever drops out where, or the buffer aborts with a reason; never a wrong sum."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.buffer import BufferSetup
from secagg.errors import Aborted, AbortReason, Duplicate, Rejected, StageError, Violation
from secagg.ledger import BufferSum, Stage
from secagg.local import STAGES, Run, run_buffer
from secagg.messages import UnmaskShares
from secagg.quantize import clip_l2, decode_error_bound, decode_sum
from secagg.server import SecAggServer

Updates = dict[str, npt.NDArray[np.float64]]


def make_setup(
    n: int, degree: int, threshold: int, *, dimension: int = 64, max_weight: float = 1.0
) -> BufferSetup:
    cohort = tuple(f"worker-{i:02d}" for i in range(n))
    return BufferSetup(
        buffer_id="buffer-7",
        cohort=cohort,
        dimension=dimension,
        degree=degree,
        threshold=threshold,
        clip=1.0,
        max_weight=max_weight,
        min_contributors=2,
    )


def random_updates(setup: BufferSetup, seed: int, scale: float = 0.3) -> Updates:
    rng = np.random.default_rng(seed)
    return {u: rng.normal(0, scale, setup.dimension) for u in setup.cohort}


def plaintext_sum(
    setup: BufferSetup, updates: Updates, weights: Mapping[str, float], who: tuple[str, ...]
) -> npt.NDArray[np.float64]:
    return sum(
        (clip_l2(updates[u], setup.clip) * weights.get(u, 1.0) for u in who),
        np.zeros(setup.dimension),
    )


def assert_correct_sum(
    run: Run, setup: BufferSetup, updates: Updates, weights: Mapping[str, float]
) -> BufferSum:
    outcome = run.outcome
    assert isinstance(outcome, BufferSum), outcome
    exact = plaintext_sum(setup, updates, weights, outcome.contributors)
    error = np.abs(decode_sum(outcome.total, setup.fixed_point) - exact).max()
    assert error <= decode_error_bound(setup.fixed_point, len(outcome.contributors)) * (1 + 1e-9)
    return outcome


def dropping(workers: tuple[str, ...], stage: Stage) -> dict[str, Stage]:
    return {u: stage for u in workers}


COMPLETE = make_setup(5, 4, 3)  # plain SecAgg: 5 holders per secret, any 3 recover
SPARSE = make_setup(12, 6, 4)  # SecAgg+: 6 neighbours, 7 holders, any 4 recover


def test_without_dropouts_the_sum_of_all_workers_comes_out() -> None:
    updates = random_updates(COMPLETE, 1)

    outcome = assert_correct_sum(run_buffer(COMPLETE, updates, {}), COMPLETE, updates, {})

    assert outcome.contributors == COMPLETE.cohort
    assert outcome.corrupt_shares == ()


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("count", [1, 2])  # 2 = n - t
def test_dropouts_up_to_n_minus_t_at_any_stage_still_give_the_survivors_sum(
    stage: Stage, count: int
) -> None:
    updates = random_updates(COMPLETE, 2)
    gone = COMPLETE.cohort[1 : 1 + count]

    outcome = assert_correct_sum(
        run_buffer(COMPLETE, updates, {}, dropouts=dropping(gone, stage)), COMPLETE, updates, {}
    )

    # Whoever sent a masked input is in the sum, whether or not it answered the unmask stage.
    in_sum = (
        COMPLETE.cohort
        if stage is Stage.UNMASK
        else tuple(u for u in COMPLETE.cohort if u not in gone)
    )
    assert outcome.contributors == in_sum


@pytest.mark.parametrize("stage", STAGES)
def test_more_than_n_minus_t_dropouts_abort_with_a_reason(stage: Stage) -> None:
    gone = COMPLETE.cohort[:3]

    run = run_buffer(COMPLETE, random_updates(COMPLETE, 3), {}, dropouts=dropping(gone, stage))

    assert isinstance(run.outcome, Aborted)
    expected = (
        AbortReason.TOO_FEW_SHARES if stage is Stage.UNMASK else AbortReason.TOO_FEW_SURVIVORS
    )
    assert run.outcome.reason is expected
    assert run.server.stage is Stage.ABORTED


def test_staleness_and_sample_weights_are_applied_before_masking() -> None:
    setup = make_setup(5, 4, 3, max_weight=4.0)
    updates = random_updates(setup, 4)
    weights = {u: w for u, w in zip(setup.cohort, (0.0, 0.25, 1.0, 2.5, 4.0), strict=True)}

    assert_correct_sum(run_buffer(setup, updates, weights), setup, updates, weights)


def test_updates_longer_than_the_clip_enter_the_sum_clipped() -> None:
    updates = random_updates(COMPLETE, 5, scale=10.0)

    outcome = assert_correct_sum(run_buffer(COMPLETE, updates, {}), COMPLETE, updates, {})

    assert (
        np.abs(decode_sum(outcome.total, COMPLETE.fixed_point)).max()
        <= len(COMPLETE.cohort) * COMPLETE.clip
    )


def reachable(setup: BufferSetup, dropouts: Mapping[str, Stage]) -> bool:
    """An oracle written from the protocol's definition: can every needed secret be rebuilt?"""

    def live_at(stage: Stage) -> set[str]:
        return {
            u
            for u in setup.cohort
            if u not in dropouts or STAGES.index(dropouts[u]) > STAGES.index(stage)
        }

    need = max(setup.threshold, setup.min_contributors)
    if any(len(live_at(s)) < need for s in STAGES[:3]):
        return False
    shared, masked, answered = live_at(Stage.SHARES), live_at(Stage.MASKED), live_at(Stage.UNMASK)
    for u in masked:
        if len((setup.neighbours(u) | {u}) & answered) < setup.threshold:
            return False
    for v in shared - masked:
        if setup.neighbours(v) & masked and len(setup.neighbours(v) & answered) < setup.threshold:
            return False
    return True


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    # Mostly live workers: about half the patterns can complete, the rest must abort.
    pattern=st.lists(st.sampled_from([None] * 8 + list(STAGES)), min_size=12, max_size=12),
)
def test_any_dropout_pattern_gives_the_exact_sum_or_an_abort_never_a_wrong_sum(
    seed: int, pattern: list[Stage | None]
) -> None:
    setup = SPARSE
    dropouts = {u: s for u, s in zip(setup.cohort, pattern, strict=True) if s is not None}
    updates = random_updates(setup, seed)
    weights = {u: (i % 4) / 4 for i, u in enumerate(setup.cohort)}

    run = run_buffer(setup, updates, weights, dropouts=dropouts, seed=seed)

    if reachable(setup, dropouts):
        outcome = assert_correct_sum(run, setup, updates, weights)
        assert set(outcome.contributors) == {
            u
            for u in setup.cohort
            if dropouts.get(u) not in (Stage.KEYS, Stage.SHARES, Stage.MASKED)
        }
    else:
        assert isinstance(run.outcome, Aborted)
        assert run.outcome.reason in (AbortReason.TOO_FEW_SURVIVORS, AbortReason.TOO_FEW_SHARES)


def through_checkpoint(server: SecAggServer) -> SecAggServer:
    """What a restart sees: the checkpoint as JSON text and .npy bytes, nothing else."""
    scalars, arrays = server.state()
    text = json.dumps(scalars)
    blobs = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        blobs[name] = buffer.getvalue()
    loaded = {name: np.load(io.BytesIO(blob), allow_pickle=False) for name, blob in blobs.items()}
    return SecAggServer.restore(json.loads(text), loaded)


@pytest.mark.parametrize(
    "dropouts",
    [{}, {"worker-03": Stage.SHARES, "worker-08": Stage.MASKED, "worker-10": Stage.UNMASK}],
)
def test_restarting_from_a_checkpoint_after_every_message_changes_nothing(
    dropouts: dict[str, Stage],
) -> None:
    updates = random_updates(SPARSE, 6)

    straight = run_buffer(SPARSE, updates, {}, dropouts=dropouts, seed=6)
    restarted = run_buffer(
        SPARSE, updates, {}, dropouts=dropouts, seed=6, resume=through_checkpoint
    )

    assert isinstance(straight.outcome, BufferSum) and isinstance(restarted.outcome, BufferSum)
    assert np.array_equal(straight.outcome.total, restarted.outcome.total)
    assert straight.outcome.contributors == restarted.outcome.contributors


def test_a_restored_aggregator_resends_the_same_stage_messages() -> None:
    server = SecAggServer(COMPLETE)
    run = run_buffer(COMPLETE, random_updates(COMPLETE, 7), {})
    for u in COMPLETE.cohort:
        server.receive(u, run.uploaded[u][0])

    sent = server.advance()

    assert through_checkpoint(server).outbox() == sent


def test_a_redelivered_masked_input_after_a_restart_is_a_duplicate_and_counts_once() -> None:
    run = run_buffer(COMPLETE, random_updates(COMPLETE, 8), {})
    server = SecAggServer(COMPLETE)
    for stage_index in range(3):
        for u in COMPLETE.cohort:
            server.receive(u, run.uploaded[u][stage_index])
        if stage_index < 2:
            server.advance()
    total_before = server.ledger.total.copy()
    restored = through_checkpoint(server)

    receipt = restored.receive("worker-00", run.uploaded["worker-00"][2])

    assert receipt == Duplicate("worker-00")
    assert np.array_equal(restored.ledger.total, total_before)


def test_a_finished_buffer_yields_its_sum_once_and_then_refuses_everything() -> None:
    run = run_buffer(COMPLETE, random_updates(COMPLETE, 9), {})
    server = through_checkpoint(run.server)

    receipt = server.receive("worker-00", run.uploaded["worker-00"][0])

    assert isinstance(receipt, Rejected) and receipt.reason is Violation.BUFFER_CLOSED
    with pytest.raises(StageError):
        server.advance()
    assert isinstance(server.outcome, BufferSum) and isinstance(run.outcome, BufferSum)
    assert np.array_equal(server.outcome.total, run.outcome.total)


def test_an_aborted_buffer_stays_aborted_across_a_restart() -> None:
    run = run_buffer(
        COMPLETE,
        random_updates(COMPLETE, 10),
        {},
        dropouts=dropping(COMPLETE.cohort[:3], Stage.KEYS),
    )

    restored = through_checkpoint(run.server)

    assert restored.stage is Stage.ABORTED
    assert restored.outcome == run.outcome


def test_the_checkpoint_is_plain_json_and_named_arrays() -> None:
    run = run_buffer(SPARSE, random_updates(SPARSE, 11), {}, dropouts={"worker-05": Stage.MASKED})

    scalars, arrays = run.server.state()

    json.dumps(scalars)  # raises if anything is not JSON-able
    assert set(arrays) == {"total", "result"}
    assert all(a.dtype == np.uint32 and a.shape == (SPARSE.dimension,) for a in arrays.values())


def test_a_buffer_that_cannot_complete_aborts_before_anyone_reveals_a_share() -> None:
    # worker-00 shares its keys, then drops; so do enough of its neighbours that fewer than t of
    # them sent a masked input. Its pairwise masks could never be removed: no unmask request goes
    # out.
    setup = SPARSE
    victim = "worker-00"
    gone = [
        victim,
        *sorted(setup.neighbours(victim))[:4],
    ]  # 6 neighbours, 4 gone: 2 live holders < t = 4

    run = run_buffer(
        setup, random_updates(setup, 12), {}, dropouts=dropping(tuple(gone), Stage.MASKED)
    )

    assert isinstance(run.outcome, Aborted)
    assert (run.outcome.stage, run.outcome.reason) == ("masked", AbortReason.TOO_FEW_SHARES)
    assert not any(isinstance(m, UnmaskShares) for sent in run.uploaded.values() for m in sent)
