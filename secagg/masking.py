"""The masks of SecAgg: y_u = x_u + PRG(b_u) + sum over neighbours v of +-PRG(s_uv), all mod 2^32.

The pairwise mask of u and v enters with + at the worker whose identity sorts
first and with - at the other, so it cancels when both are in the sum. Numpy
uint32 arithmetic wraps, which is exactly addition in Z_{2^32}.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from secagg.keys import Purpose, context, derive
from secagg.prg import keystream_words

Words = npt.NDArray[np.uint32]


def self_mask(seed: bytes, *, buffer_id: str, owner: str, dimension: int) -> Words:
    """PRG(b_u): the stream of a worker's self-mask seed, bound to the buffer and the worker."""
    key = derive(seed, Purpose.SELF_MASK, buffer_id=buffer_id, sender=owner, receiver=owner)
    return keystream_words(key, dimension, context=context(Purpose.SELF_MASK.value))


def pair_mask(mask_key: bytes, *, dimension: int) -> Words:
    """PRG(s_uv) from a pair's derived mask key (``keys.pair_mask_key``)."""
    return keystream_words(mask_key, dimension, context=context(Purpose.MASK.value))


def pair_sign(owner: str, peer: str) -> int:
    """+1 if ``owner`` adds the pair's mask, -1 if it subtracts it."""
    return 1 if owner < peer else -1


def add_signed(total: Words, words: Words, sign: int) -> None:
    """total += sign * words in Z_{2^32}, in place."""
    if sign > 0:
        np.add(total, words, out=total)
    else:
        np.subtract(total, words, out=total)
