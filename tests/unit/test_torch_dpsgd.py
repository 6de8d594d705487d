"""Opacus DP-SGD in TorchTrainer: one accountant for life, persisted, checked by dp-accounting."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from privacy.accountant import epsilon
from schemas.messages import TrainConfig
from torchtrain.dpsgd import (
    AccountantName,
    BudgetExhausted,
    DpSgdConfig,
    history_ledger,
    rdp_epsilon,
)
from torchtrain.trainer import Batches, TorchTrainer

CONFIG = TrainConfig(local_epochs=1, learning_rate=0.5)
N, BATCH = 200, 20  # q = 0.1, 10 steps per epoch


def private_trainer(ledger: Path | None, *, accountant: AccountantName = "rdp",
                    target: float | None = None, seed: int = 1) -> TorchTrainer:  # fmt: skip
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 5, generator=g)
    data = cast(Batches, DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=BATCH))
    torch.manual_seed(0)
    dp = DpSgdConfig(
        noise_multiplier=1.1, clip=1.0, target_epsilon=target, accountant=accountant,
        ledger=str(ledger) if ledger else None, seed=seed,
    )  # fmt: skip
    return TorchTrainer(torch.nn.Linear(5, 2), data, data, dpsgd=dp)


@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_epsilon_matches_dp_accounting_for_the_same_poisson_sampled_steps(
    accountant: AccountantName,
) -> None:
    t = private_trainer(None, accountant=accountant)
    weights = t.initial_weights()
    for _ in range(3):
        weights = t.fit(weights, CONFIG).weights
    assert t.private is not None

    reported = t.private.epsilon()
    ledger = history_ledger(t.private.history)
    expected = epsilon(ledger, 1e-5, accountant)

    assert ledger.to_list() == [[1.1, 0.1, 30]]
    # Opacus' RDP uses other orders than dp-accounting's; its PRV and dp-accounting's PLD are
    # both numerical: they agree to a few percent, not to the last digit.
    assert reported == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize(
    "history",
    [[(1.1, 0.1, 10)], [(1.5, 0.25, 60), (2.0, 0.5, 3)], [(0.9, 1 / 16, 17), (0.9, 1 / 16, 5)]],
)
def test_cached_rdp_epsilon_is_exactly_opacus_own(history: list[tuple[float, float, int]]) -> None:
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = list(history)

    first, again = rdp_epsilon(history, 1e-5), rdp_epsilon(history, 1e-5)

    assert first == again == accountant.get_epsilon(1e-5)


def test_epsilon_is_cumulative_in_the_metrics_and_survives_a_restart(tmp_path: Path) -> None:
    ledger = tmp_path / "dp-ledger.json"
    first = private_trainer(ledger)
    weights = first.initial_weights()
    eps = [float(first.fit(weights, CONFIG).metrics["dp_epsilon"]) for _ in range(2)]

    restarted = private_trainer(ledger)
    fit = restarted.fit(weights, CONFIG)

    assert eps[0] < eps[1] < float(fit.metrics["dp_epsilon"])
    assert fit.metrics["dp_steps_total"] == 30
    once_for_all = private_trainer(None)
    for _ in range(3):
        last = once_for_all.fit(weights, CONFIG)
    assert float(fit.metrics["dp_epsilon"]) == pytest.approx(float(last.metrics["dp_epsilon"]))


def test_a_fit_that_would_pass_the_budget_is_refused_before_it_trains(tmp_path: Path) -> None:
    ledger = tmp_path / "dp-ledger.json"
    t = private_trainer(ledger, target=3.0)  # one fit (10 steps) spends 2.84, two would pass 3
    weights = t.initial_weights()
    spent = float(t.fit(weights, CONFIG).metrics["dp_epsilon"])
    state = {k: v.clone() for k, v in t.module.state_dict().items()}

    with pytest.raises(BudgetExhausted, match="budget 3"):
        t.fit(weights, CONFIG)

    assert spent < 3.0
    assert t.private is not None and t.private.epsilon() == spent
    assert all(torch.equal(t.module.state_dict()[k], v) for k, v in state.items())
    restarted = private_trainer(ledger, target=3.0)
    with pytest.raises(BudgetExhausted):
        restarted.fit(weights, CONFIG)


def test_a_fixed_dp_seed_repeats_the_noise_and_none_does_not() -> None:
    weights = private_trainer(None).initial_weights()

    a = private_trainer(None, seed=5).fit(weights, CONFIG).weights["weight"]
    b = private_trainer(None, seed=5).fit(weights, CONFIG).weights["weight"]

    assert np.array_equal(a, b)


def test_batchnorm_is_refused_under_dp_sgd() -> None:
    data = cast(
        Batches, DataLoader(TensorDataset(torch.randn(8, 3), torch.zeros(8).long()), batch_size=4)
    )
    module = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))

    with pytest.raises(Exception, match="BatchNorm"):
        TorchTrainer(module, data, data, dpsgd=DpSgdConfig(noise_multiplier=1.0, clip=1.0))


def test_clipping_without_noise_reports_infinite_epsilon_as_the_wire_allows() -> None:
    t = private_trainer(None)
    assert t.dpsgd is not None
    clip_only = DpSgdConfig(noise_multiplier=0.0, clip=1.0, seed=1)
    t = TorchTrainer(torch.nn.Linear(5, 2), t.train_data, t.test_data, dpsgd=clip_only)

    fit = t.fit(t.initial_weights(), CONFIG)

    assert fit.metrics["dp_epsilon"] == "inf"
