"""Share bundles: a worker's two Shamir shares for one neighbour, sealed so only that neighbour
can read them and nobody can move them to another buffer, sender or receiver."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from secagg import aead, shamir
from secagg.errors import Refused, Violation
from secagg.keys import bundle_key
from secagg.messages import SealedShare

Entropy = Callable[[int], bytes]


@dataclass(frozen=True)
class HeldShares:
    """What a peer's bundle held for this worker: a share of its seed and one of its mask key."""

    seed: int
    key: int


@dataclass(frozen=True)
class BundleLink:
    """Our encryption key, the peer's public one, the buffer: what both ends derive a key from."""

    own_private: X25519PrivateKey
    peer_public: bytes
    buffer_id: str


def seal_bundle(
    link: BundleLink, sender: str, receiver: str, shares: tuple[int, int], entropy: Entropy
) -> SealedShare:
    """``(seed share, key share)`` sealed from ``sender`` to ``receiver``."""
    key = bundle_key(link.own_private, link.peer_public, link.buffer_id, sender, receiver)
    nonce = entropy(aead.NONCE_BYTES)
    plaintext = shamir.share_bytes(shares[0]) + shamir.share_bytes(shares[1])
    binding = {"buffer_id": link.buffer_id, "sender": sender, "receiver": receiver}
    return SealedShare(sender, receiver, nonce, aead.seal(key, plaintext, nonce=nonce, **binding))


def open_bundle(link: BundleLink, sealed: SealedShare, receiver: str) -> HeldShares:
    """The shares ``sealed`` holds for ``receiver``; ``Refused(CORRUPT_SHARE)`` names the sender."""
    peer = sealed.sender
    key = bundle_key(link.own_private, link.peer_public, link.buffer_id, peer, receiver)
    binding = {"buffer_id": link.buffer_id, "sender": peer, "receiver": receiver}
    try:
        plain = aead.open_sealed(key, sealed.ciphertext, nonce=sealed.nonce, **binding)
        half = shamir.SHARE_BYTES
        if len(plain) != 2 * half:
            raise ValueError("bundle has the wrong length")
        return HeldShares(shamir.share_value(plain[:half]), shamir.share_value(plain[half:]))
    except (aead.AuthenticationFailed, ValueError) as e:
        raise Refused(Violation.CORRUPT_SHARE, str(e), culprit=peer) from e
