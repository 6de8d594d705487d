"""Our accounting against dp-accounting computed directly, on a table of cases."""

from __future__ import annotations

import dp_accounting
import pytest
from dp_accounting import pld, rdp

from privacy.accountant import (
    GaussianEvent,
    Ledger,
    calibrate_noise_multiplier,
    combined_noise_multiplier,
    epsilon,
)
from privacy.participation import ParticipationAccountant

CASES = [
    # (noise multiplier, sampling rate, steps, delta)
    (1.0, 1.0, 1, 1e-5),
    (5.0, 1.0, 100, 1e-5),
    (0.8, 1.0, 10, 1e-6),
    (1.1, 0.01, 1000, 1e-5),
    (2.0, 0.1, 300, 1e-3),
    (9.0, 1.0, 5, 1e-5),
]


def direct(
    accountant: dp_accounting.PrivacyAccountant, z: float, q: float, steps: int, delta: float
) -> float:
    event = dp_accounting.GaussianDpEvent(z)
    if q < 1:
        event = dp_accounting.PoissonSampledDpEvent(q, event)
    accountant.compose(event, steps)
    return float(accountant.get_epsilon(delta))


@pytest.mark.parametrize("z,q,steps,delta", CASES)
def test_rdp_epsilon_matches_dp_accounting_directly(
    z: float, q: float, steps: int, delta: float
) -> None:
    ledger = Ledger().add(GaussianEvent(z, q), steps)

    ours = epsilon(ledger, delta, "rdp")

    assert ours == pytest.approx(direct(rdp.RdpAccountant(), z, q, steps, delta), rel=1e-9)


@pytest.mark.parametrize("z,q,steps,delta", [c for c in CASES if c[2] <= 300 and c[0] >= 1])
def test_pld_epsilon_matches_dp_accounting_directly(
    z: float, q: float, steps: int, delta: float
) -> None:
    ledger = Ledger().add(GaussianEvent(z, q), steps)

    ours = epsilon(ledger, delta, "pld")

    assert ours == pytest.approx(direct(pld.PLDAccountant(), z, q, steps, delta), rel=1e-3)


def test_a_ledger_of_mixed_events_composes_all_of_them() -> None:
    ledger = (
        Ledger()
        .add(GaussianEvent(2.0), 3)
        .add(GaussianEvent(1.0, 0.1), 50)
        .add(GaussianEvent(2.0), 2)
    )
    acc = rdp.RdpAccountant()
    acc.compose(dp_accounting.GaussianDpEvent(2.0), 5)
    acc.compose(dp_accounting.PoissonSampledDpEvent(0.1, dp_accounting.GaussianDpEvent(1.0)), 50)

    assert epsilon(ledger, 1e-5) == pytest.approx(acc.get_epsilon(1e-5), rel=1e-9)


def test_an_empty_ledger_spends_nothing_and_no_noise_spends_everything() -> None:
    assert epsilon(Ledger(), 1e-5) == 0.0
    assert epsilon(Ledger().add(GaussianEvent(0.0)), 1e-5) == float("inf")


def test_ledger_survives_a_round_trip_through_plain_lists() -> None:
    ledger = Ledger().add(GaussianEvent(1.5, 0.25), 7).add(GaussianEvent(3.0), 2)

    assert Ledger.from_list(ledger.to_list()) == ledger


def test_worst_case_worker_is_the_one_in_most_releases() -> None:
    acc = ParticipationAccountant(delta=1e-5)
    for members in (["a", "b"], ["a", "c"], ["a"], ["b"]):
        acc.record_release(GaussianEvent(3.0), members)
    direct_rdp = rdp.RdpAccountant()
    direct_rdp.compose(dp_accounting.GaussianDpEvent(3.0), 3)

    assert acc.epsilon() == pytest.approx(direct_rdp.get_epsilon(1e-5), rel=1e-9)
    assert acc.spent().max_participations == 3 and acc.releases == 4


def test_epsilon_after_the_next_release_charges_the_worst_worker_once_more() -> None:
    acc = ParticipationAccountant(delta=1e-5)
    acc.record_release(GaussianEvent(3.0), ["a"])
    acc.record_release(GaussianEvent(3.0), ["a"])

    after = acc.epsilon_after(GaussianEvent(3.0))

    assert after == pytest.approx(epsilon(Ledger().add(GaussianEvent(3.0), 3), 1e-5))


def test_two_gaussians_released_together_are_worth_the_combined_multiplier() -> None:
    acc = rdp.RdpAccountant()
    acc.compose(dp_accounting.GaussianDpEvent(1.5))
    acc.compose(dp_accounting.GaussianDpEvent(4.0))

    z = combined_noise_multiplier(1.5, 4.0)

    assert epsilon(Ledger().add(GaussianEvent(z)), 1e-5) == pytest.approx(
        acc.get_epsilon(1e-5), rel=1e-6
    )


def test_calibrated_noise_spends_the_target_epsilon() -> None:
    z = calibrate_noise_multiplier(2.0, 1e-5, lambda z: Ledger().add(GaussianEvent(z), 20))

    spent = epsilon(Ledger().add(GaussianEvent(z), 20), 1e-5)

    assert 1.99 <= spent <= 2.0
