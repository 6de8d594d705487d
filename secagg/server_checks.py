"""The aggregator's validation of each worker message: a ``Rejected`` with a reason, or None.

Messages arrive from the network: every field is checked for type, length
and range here before the state machine looks at it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import numpy as np

from secagg import aead, shamir
from secagg.buffer import BufferSetup
from secagg.errors import Rejected, Violation
from secagg.keys import WeakKey, check_public_key
from secagg.messages import (
    AdvertiseKeys,
    EncryptedShares,
    MaskedInput,
    RevealedShare,
    SealedShare,
    UnmaskShares,
)

COMMITMENT_BYTES = 32
SEALED_BYTES = 2 * shamir.SHARE_BYTES + aead.TAG_BYTES
_WORKER_MESSAGES = (AdvertiseKeys, EncryptedShares, MaskedInput, UnmaskShares)


def check_envelope(setup: BufferSetup, sender: str, message: object) -> Rejected | None:
    """Who sent it and for which buffer: the same for every stage."""
    if not isinstance(message, _WORKER_MESSAGES):
        return Rejected(
            sender, Violation.MALFORMED, f"not a worker message: {type(message).__name__}"
        )
    if sender not in setup.cohort:
        return Rejected(sender, Violation.UNKNOWN_SENDER, f"{sender!r} is not in the cohort")
    if message.sender != sender:
        return Rejected(sender, Violation.IDENTITY_MISMATCH, f"claims to be {message.sender!r}")
    if message.buffer_id != setup.buffer_id:
        return Rejected(
            sender,
            Violation.WRONG_BUFFER,
            f"for buffer {message.buffer_id!r}, not {setup.buffer_id!r}",
        )
    return None


def check_advert(message: AdvertiseKeys, others: Iterable[AdvertiseKeys]) -> Rejected | None:
    """Two well-formed, distinct public keys that no other worker has advertised."""
    sender = message.sender
    try:
        keys = (check_public_key(message.encryption_key), check_public_key(message.mask_key))
    except WeakKey as e:
        return Rejected(sender, Violation.WEAK_KEY, str(e))
    taken = {k for other in others for k in (other.encryption_key, other.mask_key)}
    if keys[0] == keys[1] or taken.intersection(keys):
        return Rejected(
            sender,
            Violation.WEAK_KEY,
            "public keys must be distinct from each other and from all others",
        )
    return None


def check_bundle(
    setup: BufferSetup, message: EncryptedShares, advertised: Collection[str]
) -> Rejected | None:
    """Exactly one well-formed sealed bundle for each advertised neighbour of the sender."""
    sender = message.sender
    if not (
        isinstance(message.seed_commitment, bytes)
        and len(message.seed_commitment) == COMMITMENT_BYTES
    ):
        return Rejected(sender, Violation.MALFORMED, "seed commitment must be 32 bytes")
    if not isinstance(message.shares, tuple):
        return Rejected(sender, Violation.MALFORMED, "shares must be a tuple")
    for sealed in message.shares:
        if not _well_formed_sealed(sealed, sender):
            return Rejected(sender, Violation.MALFORMED, "a sealed bundle is malformed")
    receivers = [s.receiver for s in message.shares]
    expected = setup.neighbours(sender) & set(advertised)
    if len(set(receivers)) != len(receivers):
        return Rejected(sender, Violation.MALFORMED, "two bundles for one receiver")
    if extra := set(receivers) - expected:
        return Rejected(
            sender, Violation.UNEXPECTED_SHARES, f"bundles for non-neighbours {sorted(extra)}"
        )
    if missing := expected - set(receivers):
        return Rejected(
            sender, Violation.WITHHELD_SHARES, f"no bundles for neighbours {sorted(missing)}"
        )
    return None


def check_masked(setup: BufferSetup, message: MaskedInput) -> Rejected | None:
    """A uint32 vector of the buffer's dimension."""
    vector = message.masked
    if not isinstance(vector, np.ndarray) or vector.dtype != np.dtype(np.uint32):
        return Rejected(message.sender, Violation.MALFORMED, "masked input must be a uint32 array")
    if vector.shape != (setup.dimension,):
        return Rejected(
            message.sender, Violation.MALFORMED, f"masked input has shape {vector.shape}"
        )
    return None


def check_unmask(
    message: UnmaskShares, survivors: Collection[str], dropped: Collection[str]
) -> Rejected | None:
    """Exactly the shares asked for: seed shares of ``survivors``, key shares of ``dropped``."""
    sender = message.sender
    for revealed, wanted, kind in (
        (message.seed_shares, survivors, "seed"),
        (message.key_shares, dropped, "key"),
    ):
        if not isinstance(revealed, tuple) or not all(_well_formed_revealed(r) for r in revealed):
            return Rejected(sender, Violation.MALFORMED, f"{kind} shares are malformed")
        owners = [r.owner for r in revealed]
        if len(set(owners)) != len(owners):
            return Rejected(sender, Violation.MALFORMED, f"two {kind} shares for one owner")
        if extra := set(owners) - set(wanted):
            return Rejected(
                sender,
                Violation.UNEXPECTED_SHARES,
                f"{kind} shares nobody asked for: {sorted(extra)}",
            )
        if missing := set(wanted) - set(owners):
            return Rejected(
                sender, Violation.WITHHELD_SHARES, f"{kind} shares withheld for {sorted(missing)}"
            )
    return None


def _well_formed_sealed(sealed: object, sender: str) -> bool:
    return (
        isinstance(sealed, SealedShare)
        and sealed.sender == sender
        and isinstance(sealed.receiver, str)
        and _bytes_of(sealed.nonce, aead.NONCE_BYTES)
        and _bytes_of(sealed.ciphertext, SEALED_BYTES)
    )


def _well_formed_revealed(revealed: object) -> bool:
    if not isinstance(revealed, RevealedShare) or not isinstance(revealed.owner, str):
        return False
    try:
        shamir.share_value(revealed.share)
    except ValueError:
        return False
    return True


def _bytes_of(value: object, length: int) -> bool:
    return isinstance(value, bytes) and len(value) == length
