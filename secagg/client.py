"""The worker's side of SecAgg+ for one buffer: a state machine that validates each step.

Steps, each callable once (an identical repeat of a request returns the
same answer, so an aggregator restarted from a checkpoint can resend):
``advertise_keys`` -> ``share_keys`` -> ``masked_input`` -> ``unmask``.
A request the worker cannot honour safely raises ``Refused`` and ends its
part in the buffer for good: after a refusal it answers nothing, so an
aggregator cannot retry its way to both secrets of a peer.

The secrets (keys, seed) live only in this object and are never persisted:
a worker that crashes is a dropout, and a restarted one must not rejoin.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from secagg import client_checks, shamir
from secagg.buffer import BufferSetup
from secagg.bundles import BundleLink, HeldShares, open_bundle, seal_bundle
from secagg.errors import Refused, StageError, Violation
from secagg.keys import context, key_pair, pair_mask_key, seed_commitment
from secagg.masking import add_signed, pair_mask, pair_sign, self_mask
from secagg.messages import (
    AdvertiseKeys,
    EncryptedShares,
    MaskedInput,
    NeighbourKeys,
    PeerKeys,
    RevealedShare,
    SealedShare,
    ShareInbox,
    UnmaskRequest,
    UnmaskShares,
)
from secagg.prg import keystream_words
from secagg.quantize import clip_l2, encode, quantize
from secagg.skellam import add_noise, noise_generator

Entropy = Callable[[int], bytes]
T = TypeVar("T")


class Step(Enum):
    ADVERTISE = 0
    SHARE = 1
    MASK = 2
    UNMASK = 3
    DONE = 4
    REFUSED = 5


class SecAggClient:
    """One worker in one buffer; ``entropy``: ``os.urandom`` in service, seeded in tests."""

    def __init__(self, setup: BufferSetup, identity: str, *, entropy: Entropy) -> None:
        if identity not in setup.cohort:
            raise Refused(
                Violation.UNKNOWN_SENDER, f"{identity} is not in the cohort of {setup.buffer_id}"
            )
        self.setup = setup
        self.identity = identity
        self._entropy = entropy
        self._encryption = key_pair(entropy(32))
        self._mask = key_pair(entropy(32))
        self._seed = entropy(32)
        self._step = Step.ADVERTISE
        self._peers: dict[str, PeerKeys] = {}
        self._own: HeldShares | None = None
        self._held: dict[str, HeldShares] = {}
        self._answered: dict[Step, tuple[object, object]] = {}

    @property
    def step(self) -> Step:
        return self._step

    def advertise_keys(self) -> AdvertiseKeys:
        """Stage 1: the public keys, fresh for this buffer."""
        self._enter(Step.ADVERTISE)
        self._step = Step.SHARE
        return AdvertiseKeys(
            self.setup.buffer_id, self.identity, self._encryption.public, self._mask.public
        )

    def share_keys(self, request: NeighbourKeys) -> EncryptedShares:
        """Stage 2: Shamir-share the seed and the mask key among itself and its neighbours."""
        replay = self._replayed(Step.SHARE, request, EncryptedShares)
        if replay is not None:
            return replay
        self._enter(Step.SHARE)
        self._guard(lambda: self._accept_peers(request))
        answer = self._seal_shares()
        return self._answer(Step.SHARE, request, answer, Step.MASK)

    def masked_input(self, inbox: ShareInbox, update: npt.ArrayLike, weight: float) -> MaskedInput:
        """Stage 3: clip, weight, quantize and mask ``update`` (``setup.dimension`` values)."""
        # A repeated inbox gets the very same vector back, whatever ``update`` is now: masking a
        # second update under the same masks would hand the aggregator the difference of the two.
        replay = self._replayed(Step.MASK, inbox, MaskedInput)
        if replay is not None:
            return replay
        self._enter(Step.MASK)
        values = self._weighted(update, weight)
        self._guard(lambda: self._open_inbox(inbox))
        answer = MaskedInput(self.setup.buffer_id, self.identity, self._mask_vector(values))
        return self._answer(Step.MASK, inbox, answer, Step.UNMASK)

    def unmask(self, request: UnmaskRequest) -> UnmaskShares:
        """Stage 4: seed shares for survivors, key shares for dropouts; never both for one peer."""
        replay = self._replayed(Step.UNMASK, request, UnmaskShares)
        if replay is not None:
            return replay
        self._enter(Step.UNMASK)
        self._guard(lambda: self._check_unmask(request))
        answer = self._reveal(request)
        return self._answer(Step.UNMASK, request, answer, Step.DONE)

    # -- stage 2 -------------------------------------------------------------------------------

    def _accept_peers(self, request: NeighbourKeys) -> None:
        self._check_addressed(request)
        client_checks.check_peer_entries(request)
        neighbours = self.setup.neighbours(self.identity)
        seen_keys = {self._encryption.public, self._mask.public}
        for peer in request.peers:
            if peer.identity not in neighbours or peer.identity in self._peers:
                raise Refused(
                    Violation.INCONSISTENT_REQUEST, f"{peer.identity!r} is not a new neighbour"
                )
            for key in (peer.encryption_key, peer.mask_key):
                seen_keys.add(client_checks.check_peer_key(peer.identity, key, seen_keys))
            self._peers[peer.identity] = peer
        if len(self._peers) + 1 < self.setup.threshold:
            raise Refused(
                Violation.TOO_FEW_NEIGHBOURS,
                f"{len(self._peers)} neighbours, threshold {self.setup.threshold}",
            )

    def _seal_shares(self) -> EncryptedShares:
        setup = self.setup
        holders = [self.identity, *sorted(self._peers)]
        xs = [setup.x_coordinate(h) for h in holders]
        seed_shares = shamir.split(
            self._seed, threshold=setup.threshold, holders=xs, entropy=self._entropy
        )
        key_shares = shamir.split(
            self._mask.private_bytes(), threshold=setup.threshold, holders=xs, entropy=self._entropy
        )
        own_x = setup.x_coordinate(self.identity)
        self._own = HeldShares(seed_shares[own_x], key_shares[own_x])
        sealed = tuple(
            self._seal_for(peer, seed_shares[x], key_shares[x])
            for peer, x in zip(holders[1:], xs[1:], strict=True)
        )
        commitment = seed_commitment(self._seed, buffer_id=setup.buffer_id, owner=self.identity)
        return EncryptedShares(setup.buffer_id, self.identity, commitment, sealed)

    def _seal_for(self, peer: str, seed_share: int, key_share: int) -> SealedShare:
        link = BundleLink(
            self._encryption.private, self._peers[peer].encryption_key, self.setup.buffer_id
        )
        return seal_bundle(link, self.identity, peer, (seed_share, key_share), self._entropy)

    # -- stage 3 -------------------------------------------------------------------------------

    def _weighted(self, update: npt.ArrayLike, weight: float) -> npt.NDArray[np.float64]:
        if not (np.isfinite(weight) and 0 <= weight <= self.setup.max_weight):
            raise ValueError(f"weight {weight} outside [0, {self.setup.max_weight}]")
        values = clip_l2(update, self.setup.clip)
        if values.shape != (self.setup.dimension,):
            raise ValueError(
                f"update has {values.size} values, the buffer expects {self.setup.dimension}"
            )
        return values * weight

    def _open_inbox(self, inbox: ShareInbox) -> None:
        self._check_addressed(inbox)
        client_checks.check_inbox_entries(inbox)
        for sealed in inbox.shares:
            sender = sealed.sender
            if (
                sender not in self._peers
                or sender in self._held
                or sealed.receiver != self.identity
            ):
                raise Refused(Violation.INCONSISTENT_REQUEST, f"unexpected bundle from {sender!r}")
            self._held[sender] = self._open(sealed)
        if len(self._held) + 1 < self.setup.threshold:
            raise Refused(
                Violation.TOO_FEW_NEIGHBOURS, f"bundles from {len(self._held)} neighbours only"
            )

    def _open(self, sealed: SealedShare) -> HeldShares:
        link = BundleLink(
            self._encryption.private,
            self._peers[sealed.sender].encryption_key,
            self.setup.buffer_id,
        )
        return open_bundle(link, sealed, self.identity)

    def _mask_vector(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.uint32]:
        setup, d = self.setup, self.setup.dimension
        # Fresh key: the rounding of one buffer must not be predictable from any other.
        uniform = keystream_words(self._entropy(32), d, context=context("rounding"))
        fixed = setup.fixed_point
        ints = quantize(values, fixed, uniform)
        if fixed.noise_variance > 0:  # distributed DP: this worker's share, before masking
            ints = add_noise(ints, fixed, noise_generator(self._entropy(32)))
        total = encode(ints)
        add_signed(
            total,
            self_mask(self._seed, buffer_id=setup.buffer_id, owner=self.identity, dimension=d),
            1,
        )
        for peer in sorted(self._held):
            key = pair_mask_key(
                self._mask.private,
                self._peers[peer].mask_key,
                buffer_id=setup.buffer_id,
                a=self.identity,
                b=peer,
            )
            add_signed(total, pair_mask(key, dimension=d), pair_sign(self.identity, peer))
        return total

    # -- stage 4 -------------------------------------------------------------------------------

    def _check_unmask(self, request: UnmaskRequest) -> None:
        self._check_addressed(request)
        client_checks.check_unmask_request(
            request, identity=self.identity, held=self._held, threshold=self.setup.threshold
        )

    def _reveal(self, request: UnmaskRequest) -> UnmaskShares:
        own = self._own
        if own is None:
            raise StageError("no own shares: share_keys did not run")
        held = {**self._held, self.identity: own}
        seeds = tuple(
            RevealedShare(p, shamir.share_bytes(held[p].seed)) for p in sorted(request.survivors)
        )
        keys = tuple(
            RevealedShare(p, shamir.share_bytes(held[p].key)) for p in sorted(request.dropped)
        )
        return UnmaskShares(self.setup.buffer_id, self.identity, seeds, keys)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _check_addressed(self, message: NeighbourKeys | ShareInbox | UnmaskRequest) -> None:
        client_checks.check_addressed(
            message, buffer_id=self.setup.buffer_id, identity=self.identity
        )

    def _enter(self, step: Step) -> None:
        if self._step is not step:
            raise StageError(f"{step.name.lower()} called at step {self._step.name.lower()}")

    def _guard(self, check: Callable[[], None]) -> None:
        """Run a validation; a refusal ends this worker's part in the buffer."""
        try:
            check()
        except Refused:
            self._step = Step.REFUSED
            raise

    def _replayed(self, step: Step, request: object, kind: type[T]) -> T | None:
        """The earlier answer to an identical request; refuses a different one for a done step."""
        if step not in self._answered:
            return None
        earlier, answer = self._answered[step]
        if earlier != request:
            self._step = Step.REFUSED
            raise Refused(
                Violation.EQUIVOCATION, f"a second, different {type(request).__name__} for one step"
            )
        if not isinstance(answer, kind):
            raise StageError(
                f"cached answer of step {step.name.lower()} is a {type(answer).__name__}"
            )
        return answer

    def _answer(self, step: Step, request: object, answer: T, then: Step) -> T:
        self._answered[step] = (request, answer)
        self._step = then
        return answer
