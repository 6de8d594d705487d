"""Probes on self-reported numbers: example counts, base versions, huge values, and the
norm bound's calibration. Each test is one probe that a worker could run against today's core.
"""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.core.aggregator import Aggregator, Applied
from aggregator.core.examples import ExampleCap
from aggregator.core.fedasync import FedAsync
from aggregator.core.fedbuff import FedBuff
from aggregator.core.robust import MIN_HISTORY, NormBound, Screened
from aggregator.core.staleness import Constant
from aggregator.core.state import AggregatorState, AppliedWindow
from aggregator.core.validation import Rejected
from aggregator.factory import build_strategy
from aggregator.settings import AggregatorSettings
from schemas.messages import ClientUpdate, UpdateKind

HONEST = [f"h{i}" for i in range(6)]


def core_with(strategy: FedBuff | FedAsync, **kwargs: object) -> Aggregator:
    weights = {"w": np.zeros(4, np.float32)}
    state = AggregatorState(run_id="r", version=0, weights=weights, applied=AppliedWindow(1000))
    return Aggregator(state, strategy, max_staleness=None, **kwargs)  # type: ignore[arg-type]


class Sender:
    """Builds updates against a core's current model and version."""

    def __init__(self, core: Aggregator, kind: UpdateKind) -> None:
        self.core, self.kind, self.sent = core, kind, 0

    def send(
        self,
        worker: str,
        step: np.ndarray | float,
        *,
        examples: int = 100,
        base: int | None = None,
        weights: np.ndarray | None = None,
    ) -> object:
        self.sent += 1
        current = self.core.state.weights["w"]
        arrays = (
            np.asarray(step, np.float32) * np.ones(4, np.float32)
            if self.kind == "delta"
            else (current + np.float32(step) if weights is None else weights)
        )
        return self.core.handle(
            ClientUpdate(
                update_id=f"update-{self.sent:05d}",
                worker_id=worker,
                base_version=self.core.state.version if base is None else base,
                num_examples=examples,
                update_kind=self.kind,
                train_seconds=0.0,
                arrays={"w": np.asarray(arrays, np.float32)},
            ),
            sender=worker,
        )


# -- example counts ---------------------------------------------------------------------------


def test_fedbuff_no_longer_trusts_self_reported_counts_by_default() -> None:
    strategy = build_strategy(AggregatorSettings(strategy="fedbuff", buffer_size=4))
    core = core_with(strategy)  # type: ignore[arg-type]
    sender = Sender(core, "delta")
    for worker in HONEST[:3]:
        sender.send(worker, 1.0, examples=100)

    sender.send("liar", -1.0, examples=2**40)

    # unit weights: (1 + 1 + 1 - 1) / 4 per coordinate; trusting the count gave ~ -1.0
    np.testing.assert_allclose(core.state.weights["w"], 0.5, rtol=1e-6)


def capped_core() -> tuple[Aggregator, Sender]:
    core = core_with(
        FedBuff(buffer_size=4, staleness=Constant(), sample_weighting=True),
        examples=ExampleCap(factor=2.0),
    )
    return core, Sender(core, "delta")


def test_an_inflated_count_is_capped_at_twice_the_median_of_admitted_counts() -> None:
    core, sender = capped_core()
    for worker in HONEST[:4]:  # the first buffer: three calibrate (unit weight), then 100
        sender.send(worker, 0.0, examples=100)
    for worker in HONEST[:3]:
        sender.send(worker, 1.0, examples=100)

    sender.send("liar", -1.0, examples=2**40)

    # the liar counts as 200 examples: (300 - 200) / 500
    np.testing.assert_allclose(core.state.weights["w"], 0.2, rtol=1e-6)


def test_a_liar_arriving_first_counts_as_one_example() -> None:
    core, sender = capped_core()
    sender.send("liar", -1.0, examples=2**40)
    sender.send("h0", 1.0, examples=100)
    sender.send("h1", 1.0, examples=100)
    sender.send("h2", 1.0, examples=100)  # the cap is calibrated now: 2 x median(2^40, 100, 100)

    # weights 1, 1, 1 and 100: (-1 + 1 + 1 + 100) / 103
    np.testing.assert_allclose(core.state.weights["w"], 101 / 103, rtol=1e-6)


def test_the_example_cap_gives_each_worker_one_vote() -> None:
    cap = ExampleCap(factor=2.0)
    for worker in ("a", "b", "c"):
        cap.admit(worker, 100)
    for _ in range(50):  # a fast liar: still one vote
        cap.admit("liar", 2**40)

    assert cap.allowed(2**40) == 200 and cap.allowed(50) == 50
    assert cap.state() == {"a": 100, "b": 100, "c": 100, "liar": 2**40}


# -- huge values ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["delta", "weights"])
def test_an_update_at_the_edge_of_float32_is_refused_and_the_model_stays_finite(
    kind: UpdateKind,
) -> None:
    strategy = FedBuff(buffer_size=1) if kind == "delta" else FedAsync(alpha=0.6)
    core = core_with(strategy)
    sender = Sender(core, kind)
    huge = np.array([3.4e38, -3.4e38, 3.4e38, -3.4e38], np.float32)

    outcome = sender.send("attacker", 0.0, weights=huge) if kind == "weights" else None
    if kind == "delta":
        outcome = sender.send("attacker", huge)

    assert isinstance(outcome, Rejected) and outcome.reason == "out-of-range"
    assert np.isfinite(core.state.weights["w"]).all()
    assert np.abs(core.state.weights["w"]).max() == 0.0


# -- the norm bound's calibration -------------------------------------------------------------


def honest_round(sender: Sender, size: float = 1.0) -> list[object]:
    return [sender.send(w, size) for w in HONEST]


def test_a_fast_attackers_refused_updates_do_not_move_the_bound() -> None:
    bound = NormBound(factor=3.0)
    core = core_with(FedBuff(buffer_size=1, staleness=Constant()), norm_bound=bound)
    sender = Sender(core, "delta")
    honest_round(sender)  # calibrates on six workers' norms of 2.0
    before = bound.bound()

    refused = [sender.send("attacker", 1e15) for _ in range(200)]

    assert all(isinstance(r, Rejected) and r.reason == "norm-bound" for r in refused)
    assert bound.bound() == before == pytest.approx(6.0)


def test_a_fast_attacker_sending_tiny_updates_cannot_lock_honest_workers_out() -> None:
    bound = NormBound(factor=3.0)
    core = core_with(FedBuff(buffer_size=1, staleness=Constant()), norm_bound=bound)
    sender = Sender(core, "delta")
    honest_round(sender)

    for _ in range(300):  # admitted (small), and three times as many as the window's honest norms
        sender.send("attacker", 1e-6)
    outcomes = honest_round(sender)

    assert all(isinstance(o, Applied) for o in outcomes)


def test_a_sign_flip_scaled_to_just_under_the_bound_moves_the_model_like_an_honest_one() -> None:
    core = core_with(FedBuff(buffer_size=1, staleness=Constant()), norm_bound=NormBound(factor=3.0))
    sender = Sender(core, "delta")
    honest_round(sender)
    before = core.state.weights["w"].copy()

    outcome = sender.send("attacker", -2.7)

    assert isinstance(outcome, Applied)
    moved = float(np.linalg.norm(core.state.weights["w"] - before))
    assert moved == pytest.approx(2.0, rel=1e-5)  # clipped to the reference (median) norm


def test_replaying_an_old_model_as_fresh_moves_it_no_more_than_a_fresh_honest_update() -> None:
    core = core_with(FedAsync(alpha=0.5, staleness=Constant()), norm_bound=NormBound(factor=3.0))
    sender = Sender(core, "weights")
    honest_round(sender, 0.1)  # calibrates: the reference norm is 0.2
    old = core.state.weights["w"].copy()
    for worker in HONEST[:4]:
        sender.send(worker, 0.1)  # each moves the model by 0.5 x 0.2
    before = core.state.weights["w"].copy()
    distance = float(np.linalg.norm(before - old))

    outcome = sender.send("attacker", 0.0, weights=old)  # claims the current version

    assert isinstance(outcome, Applied)
    moved = float(np.linalg.norm(core.state.weights["w"] - before))
    assert distance == pytest.approx(0.4, rel=1e-4)  # within 3 x 0.2: the bound alone passes it
    assert moved == pytest.approx(0.5 * 0.2, rel=1e-4)  # alpha x the reference norm


def test_the_bounds_calibration_survives_a_restart() -> None:
    first = NormBound(factor=3.0)
    core = core_with(FedBuff(buffer_size=1, staleness=Constant()), norm_bound=first)
    honest_round(Sender(core, "delta"))

    second = NormBound(factor=3.0)
    second.restore(first.state())

    assert second.bound() == first.bound() == pytest.approx(6.0)
    verdict = second.screen({"w": np.full(4, 10.0, np.float32)}, core.state.weights, "delta", "x")
    assert isinstance(verdict, Rejected) and verdict.reason == "norm-bound"


def test_calibration_waits_for_three_workers() -> None:
    bound = NormBound(factor=3.0)
    model = {"w": np.zeros(4, np.float32)}

    verdicts = [
        bound.screen({"w": np.ones(4, np.float32)}, model, "delta", w)
        for w in ["a"] * MIN_HISTORY + ["b"] * MIN_HISTORY
    ]

    assert all(isinstance(v, Rejected) and v.reason == "norm-calibrating" for v in verdicts)
    assert isinstance(
        bound.screen({"w": np.ones(4, np.float32)}, model, "delta", "c"), Rejected
    )  # the third worker's first norm completes the calibration sample
    assert isinstance(bound.screen({"w": np.ones(4, np.float32)}, model, "delta", "a"), Screened)


def test_the_example_caps_votes_survive_a_restart() -> None:
    first = ExampleCap(factor=2.0)
    for worker, claim in (("a", 100), ("b", 300), ("c", 200)):
        first.admit(worker, claim)

    second = ExampleCap(factor=2.0)
    second.restore(first.state())

    assert second.allowed(10**6) == first.allowed(10**6) == 400


def test_fast_attackers_first_to_calibrate_cannot_lock_honest_workers_out() -> None:
    # base-version liars replaying the model they were sent send zero deltas, and being fast they
    # are the first voters: a reference of 0 would refuse every honest update for good
    bound = NormBound(factor=3.0, min_workers=8 // 2 + 1)
    core = core_with(FedBuff(buffer_size=1, staleness=Constant()), norm_bound=bound)
    sender = Sender(core, "delta")
    for _ in range(6):
        sender.send("a0", 0.0)
        sender.send("a1", 0.0)
    for worker in HONEST[:3]:
        sender.send(worker, 1.0)  # the fifth voter completes the calibration

    outcomes = honest_round(sender)

    assert all(isinstance(o, Applied) for o in outcomes)
    assert bound.reference() == pytest.approx(2.0)
