"""ChaCha20-Poly1305 for the share bundles that one worker sends another through the aggregator.

The associated data binds a ciphertext to its buffer, sender and receiver:
a bundle moved to another buffer or pair fails authentication, and so does
any flipped bit. The key is one direction of one pair in one buffer
(``Purpose.SHARE_ENCRYPTION``); the nonce is random all the same.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from secagg.keys import context

NONCE_BYTES = 12
TAG_BYTES = 16


class AuthenticationFailed(ValueError):
    """A ciphertext that was altered, or sealed for another buffer, sender or receiver."""


def associated_data(*, buffer_id: str, sender: str, receiver: str) -> bytes:
    return context("share-bundle", buffer_id, sender, receiver)


def seal(
    key: bytes, plaintext: bytes, *, nonce: bytes, buffer_id: str, sender: str, receiver: str
) -> bytes:
    """Encrypt and authenticate ``plaintext`` for ``receiver``."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    aad = associated_data(buffer_id=buffer_id, sender=sender, receiver=receiver)
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def open_sealed(
    key: bytes, ciphertext: bytes, *, nonce: bytes, buffer_id: str, sender: str, receiver: str
) -> bytes:
    """The plaintext of a ``seal`` with the same key and binding; AuthenticationFailed otherwise."""
    if len(nonce) != NONCE_BYTES:
        raise AuthenticationFailed(f"nonce must be {NONCE_BYTES} bytes")
    aad = associated_data(buffer_id=buffer_id, sender=sender, receiver=receiver)
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as e:
        raise AuthenticationFailed(
            f"share bundle from {sender} to {receiver} fails authentication"
        ) from e
