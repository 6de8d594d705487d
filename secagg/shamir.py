"""Shamir t-of-n sharing of 32-byte secrets over GF(2^521 - 1), with error detection and correction.

Why this field: 2^521 - 1 is a Mersenne prime (M521), so primality needs no
argument of ours, and it exceeds 2^256, so every 32-byte secret is a field
element. A second benefit: a secret is below 2^256, a random field element
almost never is (probability 2^-265), so a reconstruction from shares that
were damaged by accident is recognisable. Against deliberate damage the
caller supplies a ``check`` (a commitment, or the public key that belongs to
a private key); with more shares than the threshold, Berlekamp-Welch
decoding corrects up to ``(m - t) // 2`` wrong shares and names them.

A share's x-coordinate is the holder's cohort index + 1 (never 0: P(0) is the secret).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from secagg.errors import UnrecoverableSecret

PRIME = (1 << 521) - 1
SECRET_BYTES = 32
SHARE_BYTES = 66  # ceil(521 / 8)
_SECRET_LIMIT = 1 << (8 * SECRET_BYTES)

Entropy = Callable[[int], bytes]
Poly = list[int]  # coefficients, lowest degree first


@dataclass(frozen=True)
class Recovered:
    """A reconstructed secret and the x-coordinates of the shares off its polynomial."""

    secret: bytes
    corrupt: tuple[int, ...]


def split(
    secret: bytes, *, threshold: int, holders: Sequence[int], entropy: Entropy
) -> dict[int, int]:
    """Shares of ``secret`` at the x-coordinates ``holders``; any ``threshold`` recover it."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"secret must be {SECRET_BYTES} bytes, got {len(secret)}")
    if len(set(holders)) != len(holders) or not all(0 < x < PRIME for x in holders):
        raise ValueError("holders must be distinct x-coordinates in [1, p)")
    if not 1 <= threshold <= len(holders):
        raise ValueError(f"threshold {threshold} outside [1, {len(holders)}]")
    poly = [int.from_bytes(secret, "big")] + [random_element(entropy) for _ in range(threshold - 1)]
    return {x: evaluate(poly, x) for x in holders}


def random_element(entropy: Entropy) -> int:
    """A uniform element of the field (rejection sampling: 521 random bits, retry on p itself)."""
    while True:
        value = int.from_bytes(entropy(SHARE_BYTES), "big") & PRIME  # PRIME is 521 one-bits
        if value < PRIME:
            return value


def share_bytes(value: int) -> bytes:
    return value.to_bytes(SHARE_BYTES, "big")


def share_value(raw: bytes) -> int:
    """A share from its wire form; raises ValueError unless it is a field element."""
    if not isinstance(raw, bytes) or len(raw) != SHARE_BYTES:
        raise ValueError(f"a share is {SHARE_BYTES} bytes")
    value = int.from_bytes(raw, "big")
    if value >= PRIME:
        raise ValueError("share is not a field element")
    return value


def recover(shares: Mapping[int, int], threshold: int, check: Callable[[bytes], bool]) -> Recovered:
    """The secret behind ``shares`` (x -> y), checked by ``check``; fixes wrong shares if it can."""
    if len(shares) < threshold:
        raise UnrecoverableSecret(f"{len(shares)} shares, threshold {threshold}")
    points = sorted(shares.items())
    base = points[:threshold]
    weights = _lagrange_weights([x for x, _ in base])
    secret = _interpolate_at(base, weights, 0)
    if _accepted(secret, check) and all(
        _interpolate_at(base, weights, x) == y for x, y in points[threshold:]
    ):
        return Recovered(_secret_bytes(secret), ())
    poly = _berlekamp_welch(points, threshold)
    if poly is not None and _accepted(poly[0], check):
        corrupt = tuple(x for x, y in points if evaluate(poly, x) != y)
        return Recovered(_secret_bytes(poly[0]), corrupt)
    raise UnrecoverableSecret(
        f"{len(points)} shares with threshold {threshold} do not yield a secret that checks"
    )


def evaluate(poly: Poly, x: int) -> int:
    """P(x) mod p by Horner's rule."""
    acc = 0
    for c in reversed(poly):
        acc = (acc * x + c) % PRIME
    return acc


def _accepted(secret: int, check: Callable[[bytes], bool]) -> bool:
    return secret < _SECRET_LIMIT and check(_secret_bytes(secret))


def _secret_bytes(secret: int) -> bytes:
    return secret.to_bytes(SECRET_BYTES, "big")


def _lagrange_weights(xs: Sequence[int]) -> list[int]:
    """1 / prod_{j != i} (x_i - x_j) for each i: the part of each Lagrange basis free of z."""
    denominators = []
    for i, xi in enumerate(xs):
        den = 1
        for j, xj in enumerate(xs):
            if j != i:
                den *= xi - xj
        denominators.append(den % PRIME)
    return _batch_inverse(denominators)


def _interpolate_at(points: Sequence[tuple[int, int]], weights: Sequence[int], z: int) -> int:
    """P(z) for the polynomial of degree < len(points) through ``points`` (barycentric form)."""
    full = 1
    for x, y in points:
        if x == z:
            return y
        full *= z - x
    # x-coordinates are small integers: full / (z - x) is an exact integer division, no inversion.
    return sum(y * w * (full // (z - x)) for (x, y), w in zip(points, weights, strict=True)) % PRIME


def _batch_inverse(values: Sequence[int]) -> list[int]:
    """Inverses of nonzero field elements with one modular inversion (Montgomery's trick)."""
    prefix = [1]
    for v in values:
        prefix.append(prefix[-1] * v % PRIME)
    inverse = pow(prefix[-1], -1, PRIME)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inverse * prefix[i] % PRIME
        inverse = inverse * values[i] % PRIME
    return out


def _berlekamp_welch(points: Sequence[tuple[int, int]], threshold: int) -> Poly | None:
    """The degree < t polynomial within ``(m - t) // 2`` errors of ``points``, if there is one."""
    errors = (len(points) - threshold) // 2
    if errors == 0:
        return None
    # Unknowns: Q (t + e coefficients) and E (monic of degree e: e unknown coefficients), with
    # Q(x) = y E(x) at each point.
    rows = []
    for x, y in points:
        powers = [pow(x, j, PRIME) for j in range(threshold + errors + 1)]
        q_part = powers[: threshold + errors]
        e_part = [(-y * powers[j]) % PRIME for j in range(errors)]
        rows.append(q_part + e_part + [y * powers[errors] % PRIME])
    solution = _solve(rows, threshold + 2 * errors)
    if solution is None:
        return None
    q, e = solution[: threshold + errors], solution[threshold + errors :] + [1]
    quotient, remainder = _divide(q, e)
    if any(remainder) or any(quotient[threshold:]):
        return None
    return quotient[:threshold]


def _solve(rows: list[list[int]], unknowns: int) -> list[int] | None:
    """A solution of an augmented linear system mod p (free unknowns 0); None if inconsistent."""
    pivots: list[int] = []
    r = 0
    for col in range(unknowns):
        pivot = next((i for i in range(r, len(rows)) if rows[i][col]), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        inv = pow(rows[r][col], -1, PRIME)
        rows[r] = [v * inv % PRIME for v in rows[r]]
        for i, row in enumerate(rows):
            if i != r and row[col]:
                factor = row[col]
                rows[i] = [(a - factor * b) % PRIME for a, b in zip(row, rows[r], strict=True)]
        pivots.append(col)
        r += 1
    if any(row[unknowns] for row in rows[r:]):
        return None
    solution = [0] * unknowns
    for i, col in enumerate(pivots):
        solution[col] = rows[i][unknowns]
    return solution


def _divide(numerator: Poly, monic: Poly) -> tuple[Poly, Poly]:
    """Polynomial long division by a monic divisor: (quotient, remainder)."""
    rem = list(numerator)
    degree = len(monic) - 1
    quotient = [0] * max(1, len(rem) - degree)
    for shift in range(len(rem) - 1 - degree, -1, -1):
        coef = rem[shift + degree]
        quotient[shift] = coef
        if coef:
            for j, m in enumerate(monic):
                rem[shift + j] = (rem[shift + j] - coef * m) % PRIME
    return quotient, rem[:degree]
