"""Choosing SecAgg+'s degree k and threshold t for a cohort of n (after Bell et al. 2020, sec. 3).

Each worker shares its two secrets (self-mask seed b_u, mask private key
s_u) among itself and its k neighbours: k + 1 shares, any t recover.

Structural rule (``check_parameters``): ``k + 1 < 2t <= 2(k + 1)``. An honest
worker reveals, for each peer, a share of b or of s but never both, and never
its own s; with no colluding workers the aggregator then cannot collect t
shares of both secrets of anyone.

Model for ``choose_parameters``: a fraction ``dropout_rate`` of the cohort drops
out over the whole protocol and a fraction ``corrupt_rate`` colludes with a
curious aggregator, both independently of the graph's ring order (which is
public randomness fixed at dispatch). Bounds, with union over the n workers
and the Chernoff-Hoeffding bound, which also holds for sampling without
replacement (Hoeffding 1963), ``T(k, m, p) = exp(-k KL(m/k || p))`` for P[Bin(k, p) >= m]:

- correctness, ``n T(k, k - t + 1, dropout) <= 2^-eta``: every dropped worker
  keeps t live neighbours (its s-shares) and every survivor t live holders;
- privacy, ``n T(k, 2t - k - 1, corrupt) <= 2^-sigma``: no worker has the
  2t - k - 1 corrupt neighbours it takes to give the aggregator both secrets;
- privacy, ``n^2 (dropout + corrupt)^k <= 2^-sigma``: the honest survivors stay
  connected (two disjoint runs of k/2 removed ring positions are needed to cut
  the ring), so only the sum of all of them is revealed.

The smallest even k < n - 1 meeting all three is chosen, with the smallest t
that meets the privacy bound (the most dropout-tolerant one). If none exists
the complete graph is used with a worst-case guarantee instead: any
``floor(dropout * n)`` dropouts and ``floor(corrupt * n)`` colluders, with
``t = floor((n + C) / 2) + 1``. k then grows as O(log n) for fixed rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from secagg.graph import check_degree


@dataclass(frozen=True)
class Parameters:
    """A degree and threshold, and the log2 failure bounds they achieve (``-inf`` when exact)."""

    degree: int
    threshold: int
    correctness_log2: float
    privacy_log2: float


def check_parameters(size: int, degree: int, threshold: int) -> None:
    """Raises ValueError unless (k, t) are structurally safe for a cohort of ``size``."""
    check_degree(size, degree)
    if not degree + 1 < 2 * threshold <= 2 * (degree + 1):
        raise ValueError(
            f"threshold {threshold} must satisfy k + 1 < 2t <= 2(k + 1) with k = {degree}"
        )


def choose_parameters(
    size: int,
    *,
    dropout_rate: float,
    corrupt_rate: float = 0.0,
    sigma: float = 40.0,
    eta: float = 20.0,
) -> Parameters:
    """The cheapest (k, t) for ``size`` workers meeting the bounds in the module docstring."""
    if not (0 <= dropout_rate < 1 and 0 <= corrupt_rate < 1):
        raise ValueError("rates must lie in [0, 1)")
    for degree in range(2, size - 1, 2):
        found = _sparse(size, degree, dropout_rate, corrupt_rate, sigma, eta)
        if found is not None:
            return found
    return _complete(size, dropout_rate, corrupt_rate)


def _sparse(
    size: int, degree: int, dropout: float, corrupt: float, sigma: float, eta: float
) -> Parameters | None:
    logn = math.log2(size)
    connectivity = (
        2 * logn + degree * math.log2(dropout + corrupt) if dropout + corrupt > 0 else -math.inf
    )
    if connectivity > -sigma:
        return None
    for threshold in range(degree // 2 + 1, degree + 2):
        privacy = logn + _tail_log2(degree, 2 * threshold - degree - 1, corrupt)
        if privacy <= -sigma:
            correctness = logn + _tail_log2(degree, degree - threshold + 1, dropout)
            if correctness > -eta:
                return None  # a larger t only makes correctness worse
            return Parameters(degree, threshold, correctness, max(privacy, connectivity))
    return None


def _complete(size: int, dropout: float, corrupt: float) -> Parameters:
    check_degree(size, size - 1)
    dropouts, colluders = math.floor(dropout * size), math.floor(corrupt * size)
    threshold = (size + colluders) // 2 + 1
    if size - dropouts < threshold:
        raise ValueError(
            f"no safe threshold for {size} workers with {dropouts} dropouts and "
            f"{colluders} colluders "
            f"(needs t = {threshold} <= {size - dropouts} survivors)"
        )
    return Parameters(size - 1, threshold, -math.inf, -math.inf)


def _tail_log2(trials: int, at_least: int, p: float) -> float:
    """log2 of the Chernoff-Hoeffding bound on P[Bin(trials, p) >= at_least]."""
    if at_least <= 0:
        return 0.0
    if at_least > trials or p == 0:
        return -math.inf
    a = at_least / trials
    if a <= p:
        return 0.0
    if a == 1:
        return trials * math.log2(p)
    kl = a * math.log(a / p) + (1 - a) * math.log((1 - a) / (1 - p))
    return -trials * kl / math.log(2)
