"""A cryptographic PRG: the ChaCha20 keystream read as little-endian uint32 words.

Masks must be unpredictable to anyone without the 256-bit key, so the stream
is a cipher's (never ``numpy.random``, whose state is recoverable from its
output and whose seeds are short).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

KEY_BYTES = 32
#: ChaCha20's block counter is 32 bits: at most 2^32 blocks of 16 words per (key, nonce).
MAX_WORDS = (1 << 32) * 16
#: The keystream is written in slices of this many bytes: bounds the all-zero input.
_SLICE = 1 << 20
_ZEROS = memoryview(bytes(_SLICE))
_BLOCK_WORDS = 16

Words = npt.NDArray[np.uint32]


def nonce_for(context: bytes) -> bytes:
    """The 96-bit nonce that separates streams drawn from one key for different purposes."""
    return hashlib.sha256(context).digest()[:12]


def keystream_words(key: bytes, count: int, *, context: bytes) -> Words:
    """``count`` pseudorandom uint32 words from ``key``; each ``context`` gives its own stream."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"PRG key must be {KEY_BYTES} bytes, got {len(key)}")
    if not 0 <= count <= MAX_WORDS:
        raise ValueError(f"word count {count} outside [0, {MAX_WORDS}]")
    # cryptography's 16-byte ChaCha20 nonce is the RFC 7539 layout: 4-byte block counter, then
    # the nonce.
    cipher = Cipher(algorithms.ChaCha20(key, bytes(4) + nonce_for(context)), mode=None)
    encryptor = cipher.encryptor()
    # update_into writes straight into the array; it wants one spare block of room past the data.
    out = np.empty(count + _BLOCK_WORDS, dtype="<u4")
    view = out.data.cast("B")
    total = count * 4
    for start in range(0, total, _SLICE):
        encryptor.update_into(_ZEROS[: min(_SLICE, total - start)], view[start:])
    return out[:count].view(np.uint32)
