"""Record-level DP-SGD with Opacus, with one accountant for the worker's whole life.

``PrivateTraining`` wraps the module, optimizer and data loader once, with one
``PrivacyEngine``: Poisson sampling (each example joins a batch independently
with rate q = batch_size / n), per-example clipping to C and N(0, (zC)^2)
noise on every step. Its accountant (Opacus' RDP, or PRV for ``pld``) is the
one that analyses exactly that sampling: a composition of Poisson-subsampled
Gaussians. Every step it counts is saved in the worker's ledger file after
each fit, so a restarted worker resumes its epsilon where it was, and a fit
that would take epsilon past the budget is refused before it runs.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from privacy.accountant import GaussianEvent, Ledger
from privacy.spending import load_ledger, save_ledger

if TYPE_CHECKING:  # Opacus (and the scipy it pulls in, ~120 MB of RSS) loads only for DP-SGD
    from opacus.accountants import IAccountant

AccountantName = Literal["rdp", "pld"]


def opacus_accountant(name: AccountantName) -> IAccountant:
    """A fresh Opacus accountant for fedmq's name: PRV is Opacus' numerical (PLD-like) one."""
    from opacus.accountants import PRVAccountant, RDPAccountant

    return PRVAccountant() if name == "pld" else RDPAccountant()


class BudgetExhausted(RuntimeError):
    """The next fit would take this worker's epsilon past its budget: it does not train."""


@dataclass(frozen=True)
class DpSgdConfig:
    """Record-level DP-SGD for one worker."""

    noise_multiplier: float
    clip: float
    delta: float = 1e-5
    target_epsilon: float | None = None
    accountant: AccountantName = "rdp"
    ledger: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.noise_multiplier < 0:
            raise ValueError("DP-SGD noise multiplier must be >= 0 (0: clipping only, epsilon inf)")
        if self.clip <= 0:
            raise ValueError("DP-SGD clip norm must be positive")
        if not 0.0 < self.delta < 1.0:
            raise ValueError("delta must be in (0, 1)")


def history_ledger(history: list[tuple[float, float, int]]) -> Ledger:
    """An Opacus accountant's history [(z, q, steps)] as fedmq's ledger of Gaussian events."""
    ledger = Ledger()
    for z, q, steps in history:
        ledger = ledger.add(GaussianEvent(float(z), float(q)), int(steps))
    return ledger


def ledger_history(ledger: Ledger) -> list[tuple[float, float, int]]:
    return [(float(z), float(q), int(n)) for z, q, n in ledger.to_list()]


def accountant_epsilon(
    name: AccountantName, history: list[tuple[float, float, int]], delta: float
) -> float:
    """Epsilon at ``delta`` that Opacus' accountant gives for ``history`` (0 if empty)."""
    if not history:
        return 0.0
    if any(z == 0 for z, _, _ in history):
        return math.inf
    if name == "rdp":
        return rdp_epsilon(history, delta)
    accountant = opacus_accountant(name)
    accountant.history = list(history)
    return float(accountant.get_epsilon(delta))


@functools.cache
def rdp_per_step(noise_multiplier: float, sample_rate: float) -> tuple[float, ...]:
    """Opacus' RDP, at its default orders, of one Poisson-subsampled Gaussian step. Opacus works it
    out afresh for every entry of the history whenever epsilon is asked for (over a second of pure
    Python per fit); it depends only on (z, q), and n steps have n times it.
    """
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import compute_rdp

    orders = RDPAccountant.DEFAULT_ALPHAS
    rdp = compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=orders)
    return tuple(float(r) for r in rdp)


def rdp_epsilon(history: list[tuple[float, float, int]], delta: float) -> float:
    """What Opacus' ``RDPAccountant(history).get_epsilon(delta)`` gives, from cached per-step
    RDP (the same sums of the same products, so the same float).
    """
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import get_privacy_spent

    total = sum(np.asarray(rdp_per_step(z, q)) * n for z, q, n in history)
    epsilon, _ = get_privacy_spent(orders=RDPAccountant.DEFAULT_ALPHAS, rdp=total, delta=delta)
    return float(epsilon)


class PrivateTraining:
    """The module, optimizer and loader made private once; the accountant lives as long."""

    def __init__(
        self,
        module: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loader: DataLoader[tuple[torch.Tensor, torch.Tensor]],
        config: DpSgdConfig,
    ) -> None:
        from opacus import PrivacyEngine

        self.config = config
        # Opacus' hook on the first layer fires with no input gradient (the data needs none); torch
        # warns on every such backward pass. Harmless, and expected here.
        warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
        with warnings.catch_warnings():
            # Opacus warns that its "secure mode" (torchcsprng, not installable here) is off; the
            # noise comes from torch's generator, seeded from OS entropy at every fit.
            warnings.filterwarnings("ignore", "Secure RNG turned off", UserWarning)
            self.engine = PrivacyEngine(accountant="rdp" if config.accountant == "rdp" else "prv")
        if config.ledger:
            # An unreadable ledger raises: better not to start than to forget spending.
            self.engine.accountant.history = ledger_history(load_ledger(config.ledger))
        self.module, self.optimizer, self.loader = self.engine.make_private(
            module=module,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=config.noise_multiplier,
            max_grad_norm=config.clip,
            poisson_sampling=True,
        )
        self.sample_rate = float(self.loader.sample_rate)

    @property
    def history(self) -> list[tuple[float, float, int]]:
        return list(self.engine.accountant.history)

    def epsilon(self) -> float:
        return accountant_epsilon(self.config.accountant, self.history, self.config.delta)

    def check_budget(self, steps: int) -> None:
        """``BudgetExhausted`` if ``steps`` more steps would take epsilon past the target."""
        target = self.config.target_epsilon
        if target is None:
            return
        planned = [*self.history, (self.config.noise_multiplier, self.sample_rate, steps)]
        after = accountant_epsilon(self.config.accountant, planned, self.config.delta)
        if after > target:
            raise BudgetExhausted(
                f"{steps} more DP-SGD steps would bring epsilon to {after:.4g} > budget "
                f"{target:g} (delta {self.config.delta:g}); spent {self.epsilon():.4g}"
            )

    def save(self) -> float:
        """Persist the accountant (atomically) and return epsilon spent so far."""
        spent = self.epsilon()
        if self.config.ledger:
            ledger = history_ledger(self.history)
            save_ledger(self.config.ledger, ledger, epsilon=spent, delta=self.config.delta)
        return spent
