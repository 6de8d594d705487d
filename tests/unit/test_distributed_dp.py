"""Distributed DP accounting: one Gaussian event per committed buffer, none for an aborted one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aggregator.core.distributed_dp import DistributedConfig, DistributedPrivacy
from aggregator.core.private import restore_strategy
from aggregator.core.secure_fedbuff import SecureFedBuff
from aggregator.core.status import RunIdentity, build_status
from fedmq.status.render import aggregator_lines
from privacy.accountant import GaussianEvent, Ledger, epsilon
from privacy.participation import Budget
from schemas.codec import decode, encode
from schemas.secure import SecureRound
from secagg.errors import Aborted
from secagg.ledger import BufferSum
from secagg.wire import round_message, setup_of
from tests.unit.test_observability import progress
from tests.unit.test_secure_fedbuff import WORKERS, deltas, model, run

Z = 1.1


def private(
    *, buffer_size: int = 3, target_epsilon: float | None = None, z: float = Z
) -> SecureFedBuff:
    config = DistributedConfig(
        noise_multiplier=z,
        clip=0.5,
        min_contributors=buffer_size,
        budget=Budget(target_epsilon, 1e-5),
    )
    return SecureFedBuff(
        buffer_size=buffer_size, cohort_size=5, clip=0.5, privacy=DistributedPrivacy(config)
    )


def test_a_committed_buffer_charges_each_contributor_one_gaussian_event_of_z() -> None:
    strategy = private()
    outcome = run(strategy, model(), deltas(), drop_before_masking=frozenset({"w2"}))
    assert isinstance(outcome, BufferSum)
    accountant = strategy.privacy.accountant  # type: ignore[union-attr]
    assert accountant.releases == 1
    for worker in WORKERS - {"w2"}:
        assert accountant.ledger(worker) == Ledger({GaussianEvent(Z): 1})
    assert accountant.ledger("w2") == Ledger()  # dropped before masking: not in the sum
    report = strategy.privacy_report()
    assert report is not None and report.mode == "distributed" and report.releases == 1
    assert report.epsilon == pytest.approx(epsilon(Ledger({GaussianEvent(Z): 1}), 1e-5))


def test_every_buffer_asks_its_workers_for_noise_of_z() -> None:
    strategy = private()
    setup = strategy.open_buffer(run_id="r", version=0, candidates=WORKERS, model=model())
    assert setup is not None and setup.noise_multiplier == Z
    assert setup.fixed_point.noise_variance > 0


def test_a_buffer_aborted_below_k_survivors_charges_nothing_and_steps_nothing() -> None:
    strategy, weights = private(buffer_size=4), model()
    outcome = run(strategy, weights, deltas(), drop_before_masking=frozenset({"w0", "w3"}))
    assert isinstance(outcome, Aborted)
    assert strategy.privacy.accountant.releases == 0  # type: ignore[union-attr]
    assert strategy.privacy_report().epsilon == 0.0  # type: ignore[union-attr]
    assert not any(np.any(a) for a in weights.values())


def test_a_release_of_fewer_than_k_contributions_is_never_accounted_as_one() -> None:
    config = DistributedConfig(
        noise_multiplier=Z, clip=0.5, min_contributors=3, budget=Budget(None, 1e-5)
    )
    with pytest.raises(ValueError, match="less noise than accounted"):
        DistributedPrivacy(config).charge(["w0", "w1"])


def test_no_buffer_opens_once_the_next_one_could_pass_the_budget() -> None:
    one = epsilon(Ledger({GaussianEvent(Z): 1}), 1e-5)
    two = epsilon(Ledger({GaussianEvent(Z): 2}), 1e-5)
    strategy = private(target_epsilon=(one + two) / 2)
    assert isinstance(run(strategy, model(), deltas()), BufferSum)
    assert strategy.closed() is not None and "would bring epsilon" in str(strategy.closed())
    again = strategy.open_buffer(run_id="run-1", version=1, candidates=WORKERS, model=model())
    assert again is None
    assert strategy.privacy_report().budget_spent  # type: ignore[union-attr]


def test_the_ledgers_survive_a_checkpoint_and_dp_cannot_be_switched_off() -> None:
    strategy = private()
    run(strategy, model(), deltas())
    scalars, arrays = strategy.state()
    scalars = json.loads(json.dumps(scalars))
    copy = private()
    restore_strategy(copy, scalars, arrays)
    assert copy.privacy_report() == strategy.privacy_report()
    with pytest.raises(ValueError, match="checkpointed with --dp"):
        restore_strategy(SecureFedBuff(buffer_size=3, cohort_size=5, clip=0.5), scalars, arrays)


def test_the_noise_multiplier_travels_in_the_secure_round_and_back() -> None:
    strategy = private()
    setup = strategy.open_buffer(run_id="r", version=0, candidates=WORKERS, model=model())
    assert setup is not None
    message = round_message(setup, run_id="r", version=0, stage="keys", messages=())
    wire = decode(encode(message), SecureRound)
    assert wire.distributed_dp is not None and wire.distributed_dp.noise_multiplier == Z
    assert setup_of(wire) == setup


@pytest.mark.parametrize(
    "bad",
    [{"noise_multiplier": 0.0}, {"noise_multiplier": -1.0}, {"noise_multiplier": 1.0, "x": 1}],
)
def test_a_secure_round_with_an_invalid_noise_field_is_refused(bad: dict[str, object]) -> None:
    strategy = private()
    setup = strategy.open_buffer(run_id="r", version=0, candidates=WORKERS, model=model())
    assert setup is not None
    fields = round_message(setup, run_id="r", version=0, stage="keys", messages=()).model_dump()
    fields["distributed_dp"] = bad
    with pytest.raises(ValueError):
        SecureRound.model_validate(fields)


def test_fedmq_status_shows_the_epsilon_spent_under_distributed_dp() -> None:
    strategy = private()
    run(strategy, model(), deltas())
    stats = progress(applied=5, workers=5, privacy=strategy.privacy_report())
    report = build_status(
        stats,
        RunIdentity("run-1", "fedbuff-secure", 5),
        now=2.0,
        rejected={},
        staleness_histogram={},
        workers={},
        eval_version=None,
    )
    spent = epsilon(Ledger({GaussianEvent(Z): 1}), 1e-5)
    assert report.epsilon == pytest.approx(spent)
    line = next(x for x in aggregator_lines(report, 0.0) if "privacy budget" in x)
    assert f"epsilon {spent:.3f} (distributed DP, delta 1e-05)" in line
