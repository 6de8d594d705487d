"""A curious aggregator: what it holds for one worker looks uniform, never an unmasked update."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import numpy.typing as npt
import pytest
from scipy.stats import chi2  # scipy comes with dp-accounting

from secagg.buffer import BufferSetup
from secagg.ledger import Stage
from secagg.local import run_buffer
from secagg.messages import MaskedInput, UnmaskShares
from secagg.quantize import clip_l2, encode
from secagg.server import SecAggServer

DIMENSION = 50_000
SETUP = BufferSetup(
    buffer_id="buffer-curious",
    cohort=tuple(f"worker-{i}" for i in range(6)),
    dimension=DIMENSION,
    degree=5,
    threshold=4,
    clip=1.0,
    max_weight=1.0,
    min_contributors=2,
)


def byte_uniformity_p(words: npt.NDArray[np.uint32]) -> float:
    """Chi-square p-value of the vector's bytes against the uniform distribution on 0..255."""
    counts = np.bincount(np.frombuffer(words.tobytes(), dtype=np.uint8), minlength=256)
    expected = counts.sum() / 256
    return float(chi2.sf(((counts - expected) ** 2 / expected).sum(), df=255))


def rounded_plaintext(update: npt.NDArray[np.float64]) -> npt.NDArray[np.uint32]:
    """The worker's encoded update up to the rounding direction (what masking must hide)."""
    return encode(np.rint(clip_l2(update, SETUP.clip) * SETUP.fixed_point.scale).astype(np.int64))


def masked_inputs(updates: dict[str, npt.NDArray[np.float64]]) -> dict[str, npt.NDArray[np.uint32]]:
    run = run_buffer(SETUP, updates, {})
    return {
        u: m.masked for u, sent in run.uploaded.items() for m in sent if isinstance(m, MaskedInput)
    }


@pytest.mark.parametrize("kind", ["zeros", "at the bound", "random"])
def test_one_workers_masked_vector_is_uniform_over_bytes(kind: str) -> None:
    rng = np.random.default_rng(1)
    plain = {
        "zeros": np.zeros(DIMENSION),
        "at the bound": np.full(DIMENSION, 1 / np.sqrt(DIMENSION)),
        "random": rng.normal(0, 0.01, DIMENSION),
    }[kind]
    updates = {u: plain for u in SETUP.cohort}

    masked = masked_inputs(updates)

    for u in SETUP.cohort:
        assert byte_uniformity_p(masked[u]) > 1e-6
        # What is left after taking the plaintext off is uniform too: no trace of it survives.
        assert byte_uniformity_p(masked[u] - rounded_plaintext(plain)) > 1e-6


def test_the_uniformity_check_does_catch_an_unmasked_vector() -> None:
    # The test above can fail: a quantized update without its masks is far from uniform.
    plain = np.random.default_rng(2).normal(0, 0.01, DIMENSION)

    assert byte_uniformity_p(rounded_plaintext(plain)) < 1e-100


def test_nothing_the_aggregator_ever_holds_is_an_individual_update() -> None:
    rng = np.random.default_rng(3)
    updates = {u: rng.normal(0, 0.01, DIMENSION) for u in SETUP.cohort}
    plaintexts = {u: rounded_plaintext(x) for u, x in updates.items()}
    held: list[npt.NDArray[np.uint32]] = []

    def inspect(server: SecAggServer) -> SecAggServer:
        held.extend(server.state()[1].values())
        return server

    run_buffer(SETUP, updates, {}, dropouts={"worker-2": Stage.MASKED}, resume=inspect)

    assert held
    for array in held:
        for plain in plaintexts.values():
            near = np.abs((array - plain).view(np.int32).astype(np.int64)) <= 2
            assert near.mean() < 0.01


def test_honest_workers_never_reveal_both_secrets_of_one_peer() -> None:
    dropouts = {"worker-1": Stage.MASKED, "worker-4": Stage.MASKED}
    run = run_buffer(SETUP, {u: np.zeros(DIMENSION) for u in SETUP.cohort}, {}, dropouts=dropouts)
    seeds, keys = defaultdict(set), defaultdict(set)
    for sender, sent in run.uploaded.items():
        for message in sent:
            if isinstance(message, UnmaskShares):
                for r in message.seed_shares:
                    seeds[r.owner].add(sender)
                for r in message.key_shares:
                    keys[r.owner].add(sender)

    assert set(seeds) == set(SETUP.cohort) - set(dropouts)
    assert set(keys) == set(dropouts)
    assert not set(seeds) & set(keys)
