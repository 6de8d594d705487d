"""Misbehaviour is detected with a reason: withheld or corrupt shares, replays, duplicates and
bad requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pytest

from secagg import shamir
from secagg.buffer import BufferSetup
from secagg.client import SecAggClient, Step
from secagg.errors import (
    Aborted,
    AbortReason,
    Accepted,
    Duplicate,
    Receipt,
    Refused,
    Rejected,
    StageError,
    Violation,
)
from secagg.ledger import BufferSum
from secagg.local import seeded_entropy
from secagg.messages import (
    AdvertiseKeys,
    EncryptedShares,
    MaskedInput,
    NeighbourKeys,
    RevealedShare,
    ShareInbox,
    UnmaskRequest,
    UnmaskShares,
    WorkerMessage,
)
from secagg.quantize import decode_sum
from secagg.server import SecAggServer

A, B, C = "worker-0", "worker-1", "worker-2"


def make_setup(
    n: int = 5, degree: int = 4, threshold: int = 3, buffer_id: str = "buffer-1"
) -> BufferSetup:
    cohort = tuple(f"worker-{i}" for i in range(n))
    return BufferSetup(buffer_id, cohort, 16, degree, threshold, 1.0, 1.0, 2)


class Buffer:
    """One buffer driven by hand, so that tests can tamper with messages on their way."""

    def __init__(self, setup: BufferSetup, seed: int = 0) -> None:
        self.setup = setup
        self.clients = {
            u: SecAggClient(setup, u, entropy=seeded_entropy(seed, u)) for u in setup.cohort
        }
        self.server = SecAggServer(setup)
        self.update = {
            u: np.full(setup.dimension, 0.01 * (i + 1)) for i, u in enumerate(setup.cohort)
        }

    def send(self, messages: Mapping[str, WorkerMessage]) -> dict[str, Receipt]:
        return {u: self.server.receive(u, m) for u, m in messages.items()}

    def advance(self) -> dict[str, object]:
        out = self.server.advance()
        assert isinstance(out, tuple)
        return {m.recipient: m for m in out}

    def adverts(self) -> dict[str, AdvertiseKeys]:
        return {u: c.advertise_keys() for u, c in self.clients.items()}

    def bundles(self, requests: dict[str, object]) -> dict[str, EncryptedShares]:
        return {
            u: self.clients[u].share_keys(r)
            for u, r in requests.items()
            if isinstance(r, NeighbourKeys)
        }

    def masked(self, inboxes: dict[str, object]) -> dict[str, MaskedInput]:
        return {
            u: self.clients[u].masked_input(r, self.update[u], 1.0)
            for u, r in inboxes.items()
            if isinstance(r, ShareInbox)
        }

    def reveal(self, requests: dict[str, object]) -> dict[str, UnmaskShares]:
        return {
            u: self.clients[u].unmask(r)
            for u, r in requests.items()
            if isinstance(r, UnmaskRequest)
        }

    def to_shares(self) -> dict[str, object]:
        self.send(self.adverts())
        return self.advance()

    def to_masked(self) -> dict[str, object]:
        self.send(self.bundles(self.to_shares()))
        return self.advance()

    def to_unmask(self) -> dict[str, object]:
        self.send(self.masked(self.to_masked()))
        return self.advance()


def rejected(receipt: Receipt, reason: Violation) -> bool:
    return isinstance(receipt, Rejected) and receipt.reason is reason


# -- the aggregator's checks -----------------------------------------------------------------


def test_a_message_for_another_buffer_is_a_replay() -> None:
    buffer = Buffer(make_setup())
    advert = buffer.clients[A].advertise_keys()

    receipt = buffer.server.receive(A, replace(advert, buffer_id="buffer-0"))

    assert rejected(receipt, Violation.WRONG_BUFFER)


def test_another_workers_message_replayed_under_its_name_is_refused() -> None:
    buffer = Buffer(make_setup())
    advert = buffer.clients[A].advertise_keys()

    assert rejected(buffer.server.receive(B, advert), Violation.IDENTITY_MISMATCH)


def test_a_sender_outside_the_cohort_is_refused() -> None:
    buffer = Buffer(make_setup())
    advert = replace(buffer.clients[A].advertise_keys(), sender="mallory")

    assert rejected(buffer.server.receive("mallory", advert), Violation.UNKNOWN_SENDER)


def test_a_redelivered_message_is_a_duplicate_and_a_different_second_one_is_equivocation() -> None:
    buffer = Buffer(make_setup())
    advert = buffer.clients[A].advertise_keys()
    other = buffer.clients[B].advertise_keys()
    buffer.server.receive(A, advert)

    duplicate = buffer.server.receive(A, advert)
    second = buffer.server.receive(A, replace(other, sender=A))

    assert duplicate == Duplicate(A)
    assert rejected(second, Violation.EQUIVOCATION)
    assert buffer.server.ledger.adverts[A] == advert


def test_a_second_different_masked_input_is_equivocation_and_the_sum_keeps_the_first() -> None:
    buffer = Buffer(make_setup())
    masked = buffer.masked(buffer.to_masked())
    buffer.server.receive(A, masked[A])
    total = buffer.server.ledger.total.copy()

    duplicate = buffer.server.receive(A, masked[A])
    second = buffer.server.receive(A, replace(masked[A], masked=masked[A].masked + np.uint32(1)))

    assert duplicate == Duplicate(A)
    assert rejected(second, Violation.EQUIVOCATION)
    assert np.array_equal(buffer.server.ledger.total, total)


def test_low_order_and_reused_public_keys_are_refused() -> None:
    buffer = Buffer(make_setup())
    adverts = buffer.adverts()
    buffer.server.receive(A, adverts[A])

    low_order = buffer.server.receive(B, replace(adverts[B], mask_key=bytes(32)))
    reused = buffer.server.receive(C, replace(adverts[C], mask_key=adverts[A].mask_key))

    assert rejected(low_order, Violation.WEAK_KEY)
    assert rejected(reused, Violation.WEAK_KEY)


def test_bundles_withheld_from_a_neighbour_are_detected() -> None:
    buffer = Buffer(make_setup())
    bundles = buffer.bundles(buffer.to_shares())
    withheld = replace(bundles[A], shares=bundles[A].shares[1:])

    receipt = buffer.server.receive(A, withheld)

    assert rejected(receipt, Violation.WITHHELD_SHARES)
    assert A not in buffer.server.ledger.bundles


def test_a_bundle_for_a_worker_that_is_not_a_neighbour_is_refused() -> None:
    setup = make_setup(n=8, degree=4, threshold=3)
    buffer = Buffer(setup)
    bundles = buffer.bundles(buffer.to_shares())
    stranger = next(u for u in setup.cohort if u != A and u not in setup.neighbours(A))
    extra = replace(bundles[A].shares[0], receiver=stranger)

    receipt = buffer.server.receive(A, replace(bundles[A], shares=(*bundles[A].shares, extra)))

    assert rejected(receipt, Violation.UNEXPECTED_SHARES)


def test_a_message_for_a_closed_stage_is_late_and_one_from_a_dropout_is_not_a_survivor() -> None:
    buffer = Buffer(make_setup())
    adverts = buffer.adverts()
    buffer.send({u: m for u, m in adverts.items() if u != A})
    requests = buffer.advance()

    late = buffer.server.receive(A, adverts[A])
    bundle = buffer.clients[B].share_keys(requests[B])  # type: ignore[arg-type]
    ghost = buffer.server.receive(A, replace(bundle, sender=A))

    assert rejected(late, Violation.WRONG_STAGE)
    assert rejected(ghost, Violation.NOT_A_SURVIVOR)


@pytest.mark.parametrize(
    "vector", [np.zeros(16, dtype=np.float64), np.zeros(15, dtype=np.uint32), [0] * 16]
)
def test_a_malformed_masked_input_is_refused(vector: object) -> None:
    buffer = Buffer(make_setup())
    buffer.to_masked()

    receipt = buffer.server.receive(A, MaskedInput("buffer-1", A, vector))  # type: ignore[arg-type]

    assert rejected(receipt, Violation.MALFORMED)


def test_unmask_shares_withheld_or_unasked_for_are_refused() -> None:
    buffer = Buffer(make_setup())
    shares = buffer.reveal(buffer.to_unmask())[A]
    stray = RevealedShare(B, shares.seed_shares[0].share)

    withheld = buffer.server.receive(A, replace(shares, seed_shares=shares.seed_shares[1:]))
    unasked = buffer.server.receive(A, replace(shares, key_shares=(stray,)))

    assert rejected(withheld, Violation.WITHHELD_SHARES)
    assert rejected(unasked, Violation.UNEXPECTED_SHARES)


# -- wrong shares at reconstruction --------------------------------------------------------------


def corrupt_seed_share(shares: UnmaskShares, owner: str, delta: int) -> UnmaskShares:
    seeds = tuple(
        RevealedShare(
            r.owner, shamir.share_bytes((shamir.share_value(r.share) + delta) % shamir.PRIME)
        )
        if r.owner == owner
        else r
        for r in shares.seed_shares
    )
    return replace(shares, seed_shares=seeds)


def test_a_wrong_share_is_corrected_and_its_holder_named_when_there_is_redundancy() -> None:
    setup = make_setup(n=7, degree=6, threshold=4)  # 7 holders, t = 4: one wrong share correctable
    buffer = Buffer(setup)
    revealed = buffer.reveal(buffer.to_unmask())
    revealed[B] = corrupt_seed_share(revealed[B], A, 12345)
    buffer.send(revealed)

    outcome = buffer.server.advance()

    assert isinstance(outcome, BufferSum)
    assert outcome.corrupt_shares == ((B, A),)
    expected = sum(np.full(16, 0.01 * (i + 1)) for i in range(7))
    assert np.allclose(decode_sum(outcome.total, setup.fixed_point), expected, atol=1e-6)


def test_a_forged_share_that_shifts_the_secret_aborts_instead_of_giving_a_wrong_sum() -> None:
    # Exactly t responders: nothing to correct with. B shifts A's seed by 1 through its Lagrange
    # weight, so the rebuilt seed is a plausible 256-bit number; only A's commitment reveals the
    # forgery.
    setup = make_setup(n=5, degree=4, threshold=3)
    buffer = Buffer(setup)
    revealed = buffer.reveal(buffer.to_unmask())
    responders = [A, B, C]
    xs = [setup.x_coordinate(u) for u in responders]
    xb = setup.x_coordinate(B)
    weight = 1
    for x in xs:
        if x != xb:
            weight = weight * x * pow(x - xb, -1, shamir.PRIME) % shamir.PRIME
    forged = corrupt_seed_share(revealed[B], A, pow(weight, -1, shamir.PRIME))
    buffer.send({A: revealed[A], B: forged, C: revealed[C]})

    outcome = buffer.server.advance()

    assert isinstance(outcome, Aborted)
    assert outcome.reason is AbortReason.UNRECOVERABLE_SECRET
    assert A in outcome.detail


# -- the worker's checks -------------------------------------------------------------------------


def test_a_corrupted_bundle_is_refused_by_its_receiver_naming_the_sender() -> None:
    buffer = Buffer(make_setup())
    bundles = buffer.bundles(buffer.to_shares())
    sealed = next(s for s in bundles[B].shares if s.receiver == A)
    flipped = replace(sealed, ciphertext=bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:])
    bundles[B] = replace(
        bundles[B], shares=tuple(flipped if s is sealed else s for s in bundles[B].shares)
    )
    buffer.send(bundles)  # the aggregator cannot tell: it holds no keys
    inboxes = buffer.advance()

    with pytest.raises(Refused) as refusal:
        buffer.clients[A].masked_input(inboxes[A], buffer.update[A], 1.0)  # type: ignore[arg-type]

    assert refusal.value.reason is Violation.CORRUPT_SHARE
    assert refusal.value.culprit == B
    assert buffer.clients[A].step is Step.REFUSED


def test_a_bundle_replayed_from_another_buffer_fails_authentication() -> None:
    old = Buffer(make_setup(buffer_id="buffer-0"), seed=1)
    old_bundles = old.bundles(old.to_shares())
    buffer = Buffer(make_setup(buffer_id="buffer-1"), seed=2)
    bundles = buffer.bundles(buffer.to_shares())
    bundles[B] = replace(
        old_bundles[B], buffer_id="buffer-1"
    )  # well-formed, so the aggregator forwards it
    buffer.send(bundles)
    inboxes = buffer.advance()

    with pytest.raises(Refused) as refusal:
        buffer.clients[A].masked_input(inboxes[A], buffer.update[A], 1.0)  # type: ignore[arg-type]

    assert refusal.value.reason is Violation.CORRUPT_SHARE and refusal.value.culprit == B


def test_a_request_for_both_secrets_of_a_peer_is_refused_and_the_worker_answers_no_more() -> None:
    buffer = Buffer(make_setup())
    requests = buffer.to_unmask()
    honest = requests[A]
    assert isinstance(honest, UnmaskRequest)
    greedy = replace(honest, dropped=(*honest.dropped, B))

    with pytest.raises(Refused) as refusal:
        buffer.clients[A].unmask(greedy)

    assert refusal.value.reason is Violation.DOUBLE_SHARE_REQUEST
    with pytest.raises(StageError):
        buffer.clients[A].unmask(honest)


def test_a_different_second_unmask_request_is_refused_an_identical_one_answered_again() -> None:
    buffer = Buffer(make_setup())
    requests = buffer.to_unmask()
    request = requests[A]
    assert isinstance(request, UnmaskRequest)
    first = buffer.clients[A].unmask(request)

    again = buffer.clients[A].unmask(request)
    with pytest.raises(Refused) as refusal:
        buffer.clients[A].unmask(
            replace(request, survivors=(A, B, C), dropped=("worker-3", "worker-4"))
        )

    assert again == first
    assert refusal.value.reason is Violation.EQUIVOCATION


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"survivors": (A, B, C)},
            Violation.INCONSISTENT_REQUEST,
        ),  # omits peers whose bundles it holds
        (
            {"survivors": (B, C, "worker-3", "worker-4")},
            Violation.INCONSISTENT_REQUEST,
        ),  # leaves itself out
        (
            {"survivors": (B, C, "worker-3", "worker-4"), "dropped": (A,)},
            Violation.INCONSISTENT_REQUEST,
        ),  # own key
        (
            {"survivors": (A, B), "dropped": (C, "worker-3", "worker-4")},
            Violation.TOO_FEW_SURVIVORS,
        ),
        ({"recipient": B}, Violation.WRONG_RECIPIENT),
        ({"buffer_id": "buffer-0"}, Violation.WRONG_BUFFER),
    ],
)
def test_an_unmask_request_inconsistent_with_what_the_worker_saw_is_refused(
    change: dict[str, object], reason: Violation
) -> None:
    buffer = Buffer(make_setup())
    request = buffer.to_unmask()[A]
    assert isinstance(request, UnmaskRequest)

    with pytest.raises(Refused) as refusal:
        buffer.clients[A].unmask(replace(request, **change))  # type: ignore[arg-type]

    assert refusal.value.reason is reason


def test_keys_for_a_non_neighbour_or_reflected_back_are_refused() -> None:
    setup = make_setup(n=8, degree=4, threshold=3)
    buffer = Buffer(setup)
    requests = buffer.to_shares()
    request = requests[A]
    assert isinstance(request, NeighbourKeys)
    stranger = next(u for u in setup.cohort if u != A and u not in setup.neighbours(A))
    own = buffer.server.ledger.adverts[A]
    foreign = replace(request.peers[0], identity=stranger)
    reflected = replace(request.peers[0], mask_key=own.mask_key)

    first, second = (SecAggClient(setup, A, entropy=seeded_entropy(0, A)) for _ in range(2))
    first.advertise_keys()
    second.advertise_keys()

    with pytest.raises(Refused) as not_neighbour:
        first.share_keys(replace(request, peers=(foreign,)))
    with pytest.raises(Refused) as reflection:
        second.share_keys(replace(request, peers=(reflected, *request.peers[1:])))

    assert not_neighbour.value.reason is Violation.INCONSISTENT_REQUEST
    assert reflection.value.reason is Violation.WEAK_KEY


def test_a_worker_with_fewer_than_t_holders_refuses_to_share() -> None:
    buffer = Buffer(make_setup())
    requests = buffer.to_shares()
    request = requests[A]
    assert isinstance(request, NeighbourKeys)

    with pytest.raises(Refused) as refusal:
        buffer.clients[A].share_keys(replace(request, peers=request.peers[:1]))

    assert refusal.value.reason is Violation.TOO_FEW_NEIGHBOURS


def test_steps_out_of_order_are_a_stage_error() -> None:
    client = SecAggClient(make_setup(), A, entropy=seeded_entropy(0, A))

    with pytest.raises(StageError):
        client.unmask(UnmaskRequest("buffer-1", A, (A,), ()))


def test_an_accepted_message_gets_an_accepted_receipt() -> None:
    buffer = Buffer(make_setup())

    assert buffer.send(buffer.adverts()) == {u: Accepted(u) for u in buffer.setup.cohort}


def test_an_inbox_sent_again_gets_the_same_masked_vector_even_for_another_update() -> None:
    # Masking a second update under the same masks would give the aggregator their difference.
    buffer = Buffer(make_setup())
    inbox = buffer.to_masked()[A]
    assert isinstance(inbox, ShareInbox)
    first = buffer.clients[A].masked_input(inbox, buffer.update[A], 1.0)

    again = buffer.clients[A].masked_input(inbox, buffer.update[A] * 2, 0.5)

    assert np.array_equal(again.masked, first.masked)


def test_malformed_aggregator_messages_are_refused_not_crashed_on() -> None:
    buffer = Buffer(make_setup())
    requests = buffer.to_shares()
    keys = requests[A]
    assert isinstance(keys, NeighbourKeys)
    spare = SecAggClient(buffer.setup, A, entropy=seeded_entropy(0, A))
    spare.advertise_keys()

    with pytest.raises(Refused) as bad_peers:
        spare.share_keys(replace(keys, peers=[*keys.peers]))  # type: ignore[arg-type]
    buffer.send(buffer.bundles(requests))
    inbox = buffer.advance()[A]
    assert isinstance(inbox, ShareInbox)
    with pytest.raises(Refused) as bad_inbox:
        shares = (*inbox.shares[:-1], "bundle")
        buffer.clients[A].masked_input(replace(inbox, shares=shares), buffer.update[A], 1.0)  # type: ignore[arg-type]

    assert bad_peers.value.reason is Violation.MALFORMED
    assert bad_inbox.value.reason is Violation.MALFORMED


def test_a_bundle_addressed_to_someone_else_is_refused() -> None:
    buffer = Buffer(make_setup())
    buffer.send(buffer.bundles(buffer.to_shares()))
    inboxes = buffer.advance()
    mine, theirs = inboxes[A], inboxes[B]
    assert isinstance(mine, ShareInbox) and isinstance(theirs, ShareInbox)
    foreign = next(s for s in theirs.shares if s.sender != A)

    with pytest.raises(Refused) as refusal:
        buffer.clients[A].masked_input(
            replace(mine, shares=(*mine.shares[1:], foreign)), buffer.update[A], 1.0
        )

    assert refusal.value.reason is Violation.INCONSISTENT_REQUEST


def test_an_unmask_request_with_lists_for_tuples_is_malformed() -> None:
    buffer = Buffer(make_setup())
    request = buffer.to_unmask()[A]
    assert isinstance(request, UnmaskRequest)

    with pytest.raises(Refused) as refusal:
        survivors = list(request.survivors)
        buffer.clients[A].unmask(replace(request, survivors=survivors))  # type: ignore[arg-type]

    assert refusal.value.reason is Violation.MALFORMED


def test_hostile_field_types_are_refused_not_crashed_on() -> None:
    buffer = Buffer(make_setup())
    advert = buffer.clients[A].advertise_keys()
    buffer.server.receive(A, advert)

    array = np.zeros(32, np.uint8)
    array_key = buffer.server.receive(A, replace(advert, encryption_key=array))  # type: ignore[arg-type]
    not_a_message = buffer.server.receive(A, "advertise me")

    assert rejected(array_key, Violation.WEAK_KEY)
    assert rejected(not_a_message, Violation.MALFORMED)
    assert buffer.server.ledger.adverts[A] == advert
