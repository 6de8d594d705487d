"""Privacy accounting with Google's ``dp-accounting`` (its RDP and PLD accountants).

A ``Ledger`` counts the Gaussian mechanisms a party has been subject to; its
epsilon at a given delta is whatever ``dp_accounting`` says for the composition
of those events. Nothing here is a hand-written privacy formula.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import dp_accounting

AccountantName = Literal["rdp", "pld"]

# dp-accounting warns (via absl) about RDP orders it drops for some (q, z); those
# orders are excluded from the bound, which stays valid. Keep the warning out of our logs.
logging.getLogger("absl").setLevel(logging.ERROR)


def _dp() -> ModuleType:
    """dp-accounting, imported on first use: it pulls in scipy (~0.7 s and ~70 MB of RSS), which a
    process without differential privacy should not pay for."""
    import dp_accounting
    import dp_accounting.pld
    import dp_accounting.rdp

    module: ModuleType = dp_accounting
    return module


@dataclass(frozen=True, order=True)
class GaussianEvent:
    """One Gaussian mechanism with noise multiplier z (noise std / sensitivity), Poisson-sampled at
    rate q < 1 if given.
    """

    noise_multiplier: float
    sampling_rate: float = 1.0

    def __post_init__(self) -> None:
        if self.noise_multiplier < 0:
            raise ValueError("noise_multiplier must be >= 0")
        if not 0.0 < self.sampling_rate <= 1.0:
            raise ValueError("sampling_rate must be in (0, 1]")

    def dp_event(self) -> dp_accounting.DpEvent:
        gaussian = _dp().GaussianDpEvent(self.noise_multiplier)
        if self.sampling_rate >= 1.0:
            return gaussian
        return _dp().PoissonSampledDpEvent(self.sampling_rate, gaussian)


class Ledger:
    """How many times each event was composed. Immutable: ``add`` returns a new ledger."""

    def __init__(self, counts: Mapping[GaussianEvent, int] | None = None) -> None:
        self._counts = {e: int(n) for e, n in (counts or {}).items() if n > 0}

    def add(self, event: GaussianEvent, count: int = 1) -> Ledger:
        counts = dict(self._counts)
        counts[event] = counts.get(event, 0) + count
        return Ledger(counts)

    @property
    def counts(self) -> dict[GaussianEvent, int]:
        return dict(self._counts)

    def total(self) -> int:
        return sum(self._counts.values())

    def dominates(self, other: Ledger) -> bool:
        """Every event at least as often as in ``other``: this party's epsilon is at least the
        other's.
        """
        return all(self._counts.get(e, 0) >= n for e, n in other._counts.items())

    def dp_event(self) -> dp_accounting.DpEvent:
        parts = [
            _dp().SelfComposedDpEvent(e.dp_event(), n) for e, n in sorted(self._counts.items())
        ]
        return _dp().ComposedDpEvent(parts)

    def key(self) -> tuple[tuple[float, float, int], ...]:
        return tuple(
            (e.noise_multiplier, e.sampling_rate, n) for e, n in sorted(self._counts.items())
        )

    def to_list(self) -> list[list[float]]:
        """[[z, q, count], ...]: msgpack- and JSON-safe."""
        return [list(row) for row in self.key()]

    @classmethod
    def from_list(cls, rows: Iterable[Iterable[float]]) -> Ledger:
        counts: dict[GaussianEvent, int] = {}
        for z, q, n in rows:
            event = GaussianEvent(float(z), float(q))
            counts[event] = counts.get(event, 0) + int(n)
        return cls(counts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ledger) and self._counts == other._counts

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return f"Ledger({self.to_list()})"


def make_accountant(name: AccountantName) -> dp_accounting.PrivacyAccountant:
    """A fresh dp-accounting accountant (add-or-remove-one neighbouring)."""
    if name == "rdp":
        return _dp().rdp.RdpAccountant()
    if name == "pld":
        return _dp().pld.PLDAccountant()
    raise ValueError(f"unknown accountant {name!r} (choose rdp or pld)")


def epsilon(ledger: Ledger, delta: float, accountant: AccountantName = "rdp") -> float:
    """Epsilon at ``delta`` of everything in ``ledger`` (0 if it is empty, inf without noise)."""
    if not 0.0 < delta < 1.0:
        raise ValueError("delta must be in (0, 1)")
    if not ledger.total():
        return 0.0
    if any(e.noise_multiplier == 0 for e in ledger.counts):
        return float("inf")
    acc = make_accountant(accountant)
    acc.compose(ledger.dp_event())
    return float(acc.get_epsilon(delta))


def combined_noise_multiplier(*multipliers: float) -> float:
    """The one Gaussian equivalent to several released together: (sum z_i^-2)^-1/2.

    Used for adaptive clipping, whose noisy clipped-count is released beside the
    noisy sum (Andrew et al. 2021, section 3.1). Exact for Gaussians.
    """
    if any(z <= 0 for z in multipliers):
        return 0.0
    return float(sum(z**-2 for z in multipliers) ** -0.5)


def calibrate_noise_multiplier(
    target_epsilon: float,
    delta: float,
    ledger_for: Callable[[float], Ledger],
    accountant: AccountantName = "rdp",
) -> float:
    """The smallest z (to dp-accounting's tolerance) with epsilon(ledger_for(z)) <= target_epsilon
    at ``delta``.

    ``ledger_for`` says what will be composed for a given z, e.g. 10 releases:
    ``lambda z: Ledger().add(GaussianEvent(z), 10)``.
    """
    return float(
        _dp().calibrate_dp_mechanism(
            lambda: make_accountant(accountant),
            lambda z: ledger_for(z).dp_event(),
            target_epsilon,
            delta,
            _dp().LowerEndpointAndGuess(1e-3, 1.0),
        )
    )
