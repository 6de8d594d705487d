"""X25519 key pairs, key agreement, and HKDF-SHA256 keys bound to their buffer, parties and purpose.

Every derived key names the protocol version, the purpose, the buffer and
both parties in its HKDF ``info`` (length-prefixed, so no two contexts encode
alike): a key can never be reused across buffers, directions or purposes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LABEL = "fedmq-secagg/v1"
KEY_BYTES = 32
#: A fixed scalar to probe public keys with: a low-order point gives the all-zero secret for
#: every scalar.
_PROBE = X25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"fedmq-secagg/v1 low-order probe").digest()
)


class Purpose(str, Enum):
    """What a derived key is for; part of every key's context."""

    MASK = "mask"  # the pairwise mask of two workers
    SELF_MASK = "self-mask"  # a worker's own mask, expanded from its seed b_u
    SHARE_ENCRYPTION = "share-encryption"  # the AEAD key for one direction of one pair


@dataclass(frozen=True)
class KeyPair:
    private: X25519PrivateKey
    public: bytes

    def private_bytes(self) -> bytes:
        return self.private.private_bytes_raw()


class WeakKey(ValueError):
    """A public key that is malformed or of low order (its agreement is predictable)."""


def context(*fields: str) -> bytes:
    """An unambiguous encoding of the label and ``fields`` (each 2-byte length-prefixed UTF-8)."""
    out = bytearray()
    for field in (LABEL, *fields):
        raw = field.encode()
        if len(raw) > 0xFFFF:
            raise ValueError("context field too long")
        out += len(raw).to_bytes(2, "big") + raw
    return bytes(out)


def key_pair(private: bytes) -> KeyPair:
    """The X25519 key pair for 32 private bytes (drawn by the caller from its entropy source)."""
    key = X25519PrivateKey.from_private_bytes(private)
    return KeyPair(key, key.public_key().public_bytes_raw())


def check_public_key(raw: object) -> bytes:
    """``raw`` if it is a usable X25519 public key; raises WeakKey otherwise."""
    if not isinstance(raw, bytes) or len(raw) != KEY_BYTES:
        raise WeakKey(f"a public key is {KEY_BYTES} bytes")
    try:
        _PROBE.exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError as e:  # the all-zero shared secret: a low-order point
        raise WeakKey("low-order public key") from e
    return raw


def agree(private: X25519PrivateKey, peer_public: bytes) -> bytes:
    """The raw X25519 shared secret (never used as a key itself: see ``derive``)."""
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as e:
        raise WeakKey("key agreement with a low-order public key") from e


def derive(secret: bytes, purpose: Purpose, *, buffer_id: str, sender: str, receiver: str) -> bytes:
    """A 32-byte key from ``secret`` with HKDF-SHA256, bound to purpose, buffer and parties."""
    info = context(purpose.value, buffer_id, sender, receiver)
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(secret)


def bundle_key(
    private: X25519PrivateKey, peer_public: bytes, buffer_id: str, sender: str, receiver: str
) -> bytes:
    """The AEAD key of the bundles sent sender -> receiver (both ends derive it; per direction)."""
    secret = agree(private, peer_public)
    return derive(
        secret, Purpose.SHARE_ENCRYPTION, buffer_id=buffer_id, sender=sender, receiver=receiver
    )


def pair_mask_key(
    private: X25519PrivateKey, peer_public: bytes, *, buffer_id: str, a: str, b: str
) -> bytes:
    """The mask key of workers ``a`` and ``b``; both derive it, so the pair goes in sorted order."""
    low, high = sorted((a, b))
    return derive(
        agree(private, peer_public), Purpose.MASK, buffer_id=buffer_id, sender=low, receiver=high
    )


def seed_commitment(seed: bytes, *, buffer_id: str, owner: str) -> bytes:
    """SHA-256 commitment to a self-mask seed: lets the aggregator check a reconstructed seed.

    The seed is 256 uniformly random bits, so the hash reveals nothing usable about it.
    """
    return hashlib.sha256(context("seed-commitment", buffer_id, owner) + seed).digest()
