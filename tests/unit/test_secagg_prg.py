"""The mask PRG: the ChaCha20 keystream (RFC 8439 layout) read as uint32 words."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2  # scipy comes with dp-accounting

from secagg import prg
from secagg.prg import keystream_words


def test_the_words_are_the_rfc_8439_keystream_for_the_contexts_nonce(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # RFC 8439 appendix A.1, test vector 1: all-zero key, nonce and counter; block 0, 16 bytes.
    monkeypatch.setattr(prg, "nonce_for", lambda context: bytes(12))
    expected = bytes.fromhex("76b8e0ada0f13d90405d6ae55386bd28")

    words = keystream_words(bytes(32), 4, context=b"any")

    assert words.astype("<u4").tobytes() == expected


def test_the_stream_is_a_function_of_key_and_context() -> None:
    key = bytes(range(32))

    a = keystream_words(key, 1000, context=b"one")

    assert np.array_equal(a, keystream_words(key, 1000, context=b"one"))
    assert not np.array_equal(a, keystream_words(key, 1000, context=b"two"))
    assert not np.array_equal(a, keystream_words(bytes(32), 1000, context=b"one"))


def test_a_longer_stream_extends_a_shorter_one_across_slice_boundaries() -> None:
    key = bytes(range(32))
    long = keystream_words(key, (1 << 18) + 5, context=b"c")  # past the 1 MiB slice

    assert np.array_equal(long[:7], keystream_words(key, 7, context=b"c"))
    assert long.shape == ((1 << 18) + 5,) and long.dtype == np.uint32


def test_the_stream_bytes_look_uniform() -> None:
    words = keystream_words(bytes(range(32)), 1 << 16, context=b"chi")
    counts = np.bincount(np.frombuffer(words.tobytes(), dtype=np.uint8), minlength=256)
    expected = counts.sum() / 256

    statistic = float(((counts - expected) ** 2 / expected).sum())

    assert chi2.sf(statistic, df=255) > 1e-6


@pytest.mark.parametrize("key", [bytes(31), bytes(33)])
def test_a_key_of_the_wrong_length_is_refused(key: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        keystream_words(key, 1, context=b"")
