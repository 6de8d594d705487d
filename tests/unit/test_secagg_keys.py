"""X25519 agreement, HKDF keys bound to their context, and the AEAD for share bundles."""

from __future__ import annotations

import pytest

from secagg.aead import AuthenticationFailed, open_sealed, seal
from secagg.keys import (
    Purpose,
    WeakKey,
    agree,
    check_public_key,
    context,
    derive,
    key_pair,
    pair_mask_key,
    seed_commitment,
)

ALICE, BOB = key_pair(bytes([1]) * 32), key_pair(bytes([2]) * 32)
BINDING = {"buffer_id": "b1", "sender": "alice", "receiver": "bob"}


def test_both_ends_of_an_agreement_get_the_same_secret() -> None:
    assert agree(ALICE.private, BOB.public) == agree(BOB.private, ALICE.public)


def test_the_pair_mask_key_does_not_depend_on_who_computes_it() -> None:
    from_alice = pair_mask_key(ALICE.private, BOB.public, buffer_id="b1", a="alice", b="bob")
    from_bob = pair_mask_key(BOB.private, ALICE.public, buffer_id="b1", a="bob", b="alice")

    assert from_alice == from_bob


@pytest.mark.parametrize(
    "change",
    [
        {"buffer_id": "b2"},
        {"sender": "bob", "receiver": "alice"},
        {"receiver": "carol"},
    ],
)
def test_a_derived_key_changes_with_buffer_and_parties(change: dict[str, str]) -> None:
    secret = agree(ALICE.private, BOB.public)
    base = derive(secret, Purpose.SHARE_ENCRYPTION, **BINDING)

    assert derive(secret, Purpose.SHARE_ENCRYPTION, **(BINDING | change)) != base


def test_a_derived_key_changes_with_its_purpose() -> None:
    secret = agree(ALICE.private, BOB.public)

    assert derive(secret, Purpose.MASK, **BINDING) != derive(
        secret, Purpose.SHARE_ENCRYPTION, **BINDING
    )


def test_context_fields_are_length_prefixed_so_they_cannot_run_together() -> None:
    assert context("ab", "c") != context("a", "bc")
    assert context("ab") == b"\x00\x0ffedmq-secagg/v1\x00\x02ab"


@pytest.mark.parametrize("raw", [bytes(32), (1).to_bytes(32, "little")])
def test_low_order_public_keys_are_refused(raw: bytes) -> None:
    with pytest.raises(WeakKey, match="low-order"):
        check_public_key(raw)


@pytest.mark.parametrize("raw", [bytes(31), "x" * 32, None])
def test_malformed_public_keys_are_refused(raw: object) -> None:
    with pytest.raises(WeakKey):
        check_public_key(raw)


def test_a_real_public_key_passes() -> None:
    assert check_public_key(ALICE.public) == ALICE.public


def test_the_seed_commitment_binds_buffer_and_owner() -> None:
    seed = bytes(range(32))
    base = seed_commitment(seed, buffer_id="b1", owner="alice")

    assert seed_commitment(seed, buffer_id="b2", owner="alice") != base
    assert seed_commitment(seed, buffer_id="b1", owner="bob") != base
    assert seed_commitment(bytes(32), buffer_id="b1", owner="alice") != base


def test_a_sealed_bundle_opens_with_the_same_key_and_binding() -> None:
    key, nonce = bytes(range(32)), bytes(12)

    sealed = seal(key, b"shares", nonce=nonce, **BINDING)

    assert open_sealed(key, sealed, nonce=nonce, **BINDING) == b"shares"


def test_a_flipped_bit_fails_authentication() -> None:
    key, nonce = bytes(range(32)), bytes(12)
    sealed = bytearray(seal(key, b"shares", nonce=nonce, **BINDING))
    sealed[0] ^= 1

    with pytest.raises(AuthenticationFailed):
        open_sealed(key, bytes(sealed), nonce=nonce, **BINDING)


@pytest.mark.parametrize(
    "change", [{"buffer_id": "b2"}, {"sender": "carol"}, {"receiver": "carol"}]
)
def test_a_bundle_moved_to_another_buffer_or_pair_fails_authentication(
    change: dict[str, str],
) -> None:
    key, nonce = bytes(range(32)), bytes(12)
    sealed = seal(key, b"shares", nonce=nonce, **BINDING)

    with pytest.raises(AuthenticationFailed):
        open_sealed(key, sealed, nonce=nonce, **(BINDING | change))
