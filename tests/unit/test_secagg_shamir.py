"""Shamir sharing over GF(2^521 - 1): recovery from any t shares; bad ones detected, corrected."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import UnrecoverableSecret
from secagg.shamir import PRIME, evaluate, recover, share_bytes, share_value, split

ONE = (1).to_bytes(32, "big")


def anything(secret: bytes) -> bool:
    return True


def test_prime_is_the_mersenne_prime_m521() -> None:
    assert PRIME == 2**521 - 1
    assert pow(3, PRIME - 1, PRIME) == 1  # Fermat witness (primality is known: M521)


def test_three_points_of_1_plus_2x_plus_3x2_recover_its_constant_term() -> None:
    shares = {1: 6, 2: 17, 3: 34}

    assert recover(shares, 3, anything).secret == ONE


def test_one_wrong_share_among_five_is_corrected_and_named() -> None:
    shares = {1: 6, 2: 18, 3: 34, 4: 57, 5: 86}  # P(2) is 17

    recovered = recover(shares, 3, anything)

    assert recovered.secret == ONE
    assert recovered.corrupt == (2,)


def test_a_wrong_share_without_redundancy_to_correct_it_is_refused_by_the_check() -> None:
    shares = {1: 6, 2: 18, 3: 34, 4: 57}  # 4 points, t = 3: detectable, not correctable

    with pytest.raises(UnrecoverableSecret):
        recover(shares, 3, lambda s: s == ONE)


def test_fewer_than_t_shares_are_refused() -> None:
    with pytest.raises(UnrecoverableSecret, match="threshold 3"):
        recover({1: 6, 2: 17}, 3, anything)


def test_a_corrupted_share_is_caught_even_without_a_check_because_secrets_are_below_2_256() -> None:
    shares = {1: 6, 2: 17 + 12345, 3: 34}

    with pytest.raises(UnrecoverableSecret):
        recover(shares, 3, anything)


def test_split_evaluates_one_polynomial_whose_constant_term_is_the_secret() -> None:
    secret = bytes(range(32))
    draws = random.Random(1).randbytes

    shares = split(secret, threshold=2, holders=[1, 2, 3], entropy=draws)

    slope = (shares[2] - shares[1]) % PRIME
    assert evaluate([int.from_bytes(secret, "big"), slope], 3) == shares[3]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    holders=st.integers(2, 12),
    data=st.data(),
)
def test_any_t_shares_recover_the_secret_and_fewer_do_not(
    seed: int, holders: int, data: st.DataObject
) -> None:
    rng = random.Random(seed)
    threshold = data.draw(st.integers(1, holders))
    secret = rng.randbytes(32)
    xs = rng.sample(range(1, 1000), holders)
    shares = split(secret, threshold=threshold, holders=xs, entropy=rng.randbytes)
    subset = data.draw(st.sets(st.sampled_from(xs), min_size=threshold, max_size=holders))

    assert (
        recover({x: shares[x] for x in subset}, threshold, lambda s: s == secret).secret == secret
    )
    if threshold > 1:
        fewer = list(subset)[: threshold - 1]
        with pytest.raises(UnrecoverableSecret):
            recover({x: shares[x] for x in fewer}, threshold, lambda s: s == secret)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), threshold=st.integers(1, 6), extra=st.integers(0, 6))
def test_up_to_half_the_redundancy_in_wrong_shares_is_corrected(
    seed: int, threshold: int, extra: int
) -> None:
    rng = random.Random(seed)
    secret = rng.randbytes(32)
    xs = list(range(1, threshold + extra + 1))
    shares = split(secret, threshold=threshold, holders=xs, entropy=rng.randbytes)
    wrong = rng.sample(xs, extra // 2)
    for x in wrong:
        shares[x] = (shares[x] + rng.randrange(1, PRIME)) % PRIME

    recovered = recover(shares, threshold, lambda s: s == secret)

    assert recovered.secret == secret
    assert recovered.corrupt == tuple(sorted(wrong))


def test_more_wrong_shares_than_can_be_corrected_never_yield_a_wrong_secret() -> None:
    rng = random.Random(3)
    secret = rng.randbytes(32)
    shares = split(secret, threshold=3, holders=list(range(1, 8)), entropy=rng.randbytes)
    for x in (1, 2, 3):  # (7 - 3) // 2 = 2 correctable; 3 are wrong
        shares[x] = (shares[x] + 1) % PRIME

    with pytest.raises(UnrecoverableSecret):
        recover(shares, 3, lambda s: s == secret)


def test_no_t_minus_one_shares_determine_the_secret() -> None:
    # Perfect secrecy, by example: for t = 2 every candidate secret fits one given share.
    rng = random.Random(5)
    shares = split(bytes(32), threshold=2, holders=[1, 2], entropy=rng.randbytes)
    for candidate in (0, 1, 2**255):
        slope = (shares[1] - candidate) % PRIME
        assert evaluate([candidate, slope], 1) == shares[1]


def test_shares_round_trip_through_their_wire_form() -> None:
    for value in (0, 1, PRIME - 1):
        assert share_value(share_bytes(value)) == value
    for raw in (share_bytes(0)[:-1], PRIME.to_bytes(66, "big")):
        with pytest.raises(ValueError):
            share_value(raw)


def test_split_refuses_repeated_or_zero_holders() -> None:
    for xs in ([1, 1], [0, 2]):
        with pytest.raises(ValueError, match="holders"):
            split(bytes(32), threshold=1, holders=xs, entropy=random.Random(0).randbytes)


def test_every_pair_of_three_shares_recovers() -> None:
    rng = random.Random(9)
    secret = rng.randbytes(32)
    shares = split(secret, threshold=2, holders=[4, 9, 11], entropy=rng.randbytes)

    for pair in itertools.combinations(shares, 2):
        assert recover({x: shares[x] for x in pair}, 2, lambda s: s == secret).secret == secret
