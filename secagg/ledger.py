"""Everything the aggregator holds for one buffer, and its checkpoint form (scalars + arrays).

The aggregator checkpoints the ledger after every message it accepts and
before acknowledging it, and after every stage change before sending the
stage's messages; restored after a crash, it continues as if nothing had
happened (a redelivered message is then a ``Duplicate``). Survivor sets are
not stored: a stage's survivors are the senders of the stage before it once
that stage has closed, and messages for a closed stage are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

from secagg.buffer import BufferSetup
from secagg.errors import Aborted, AbortReason
from secagg.messages import AdvertiseKeys, EncryptedShares, RevealedShare, SealedShare, UnmaskShares

FORMAT = "fedmq-secagg-aggregator"
FORMAT_VERSION = 1


class Stage(str, Enum):
    KEYS = "keys"
    SHARES = "shares"
    MASKED = "masked"
    UNMASK = "unmask"
    DONE = "done"
    ABORTED = "aborted"


@dataclass(frozen=True, eq=False)
class BufferSum:
    """The buffer's outcome: sum of the contributors' quantized weighted updates in Z_{2^32}.

    ``corrupt_shares`` lists (holder, owner) pairs whose revealed share was
    off the owner's sharing polynomial (corrected, but worth reporting).
    """

    buffer_id: str
    total: npt.NDArray[np.uint32]
    contributors: tuple[str, ...]
    corrupt_shares: tuple[tuple[str, str], ...] = ()


@dataclass
class Ledger:
    stage: Stage
    total: npt.NDArray[np.uint32]  # running sum of the masked inputs accepted so far
    adverts: dict[str, AdvertiseKeys] = field(default_factory=dict)
    bundles: dict[str, EncryptedShares] = field(default_factory=dict)
    masked: dict[str, bytes] = field(default_factory=dict)  # sender -> SHA-256 of its masked input
    unmasks: dict[str, UnmaskShares] = field(default_factory=dict)
    outcome: BufferSum | Aborted | None = None


def dump(setup: BufferSetup, ledger: Ledger) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The ledger as JSON-able scalars (bytes as hex) and named arrays."""
    scalars: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "setup": setup.as_dict(),
        "stage": ledger.stage.value,
        "adverts": {
            s: [m.encryption_key.hex(), m.mask_key.hex()] for s, m in ledger.adverts.items()
        },
        "bundles": {s: _bundle_scalars(m) for s, m in ledger.bundles.items()},
        "masked": {s: digest.hex() for s, digest in ledger.masked.items()},
        "unmasks": {s: _unmask_scalars(m) for s, m in ledger.unmasks.items()},
        "outcome": _outcome_scalars(ledger.outcome),
    }
    arrays = {"total": ledger.total.copy()}
    if isinstance(ledger.outcome, BufferSum):
        arrays["result"] = ledger.outcome.total.copy()
    return scalars, arrays


def load(scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[BufferSetup, Ledger]:
    """The inverse of ``dump``; raises ValueError on a checkpoint of another format or version."""
    if scalars.get("format") != FORMAT or scalars.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} checkpoint")
    setup = BufferSetup.from_dict(scalars["setup"])
    buffer_id = setup.buffer_id
    total = np.array(arrays["total"], dtype=np.uint32)
    if total.shape != (setup.dimension,):
        raise ValueError(f"checkpointed sum has shape {total.shape}, expected ({setup.dimension},)")
    ledger = Ledger(
        stage=Stage(scalars["stage"]),
        total=total,
        adverts={
            s: AdvertiseKeys(buffer_id, s, bytes.fromhex(c), bytes.fromhex(m))
            for s, (c, m) in scalars["adverts"].items()
        },
        bundles={s: _bundle_from(buffer_id, s, v) for s, v in scalars["bundles"].items()},
        masked={s: bytes.fromhex(d) for s, d in scalars["masked"].items()},
        unmasks={s: _unmask_from(buffer_id, s, v) for s, v in scalars["unmasks"].items()},
    )
    ledger.outcome = _outcome_from(buffer_id, scalars["outcome"], arrays)
    return setup, ledger


def _bundle_scalars(message: EncryptedShares) -> dict[str, Any]:
    shares = [[s.receiver, s.nonce.hex(), s.ciphertext.hex()] for s in message.shares]
    return {"commitment": message.seed_commitment.hex(), "shares": shares}


def _bundle_from(buffer_id: str, sender: str, data: dict[str, Any]) -> EncryptedShares:
    shares = tuple(
        SealedShare(sender, receiver, bytes.fromhex(nonce), bytes.fromhex(ct))
        for receiver, nonce, ct in data["shares"]
    )
    return EncryptedShares(buffer_id, sender, bytes.fromhex(data["commitment"]), shares)


def _unmask_scalars(message: UnmaskShares) -> dict[str, Any]:
    return {
        "seed": [[r.owner, r.share.hex()] for r in message.seed_shares],
        "key": [[r.owner, r.share.hex()] for r in message.key_shares],
    }


def _unmask_from(buffer_id: str, sender: str, data: dict[str, Any]) -> UnmaskShares:
    seeds = tuple(RevealedShare(owner, bytes.fromhex(share)) for owner, share in data["seed"])
    keys = tuple(RevealedShare(owner, bytes.fromhex(share)) for owner, share in data["key"])
    return UnmaskShares(buffer_id, sender, seeds, keys)


def _outcome_scalars(outcome: BufferSum | Aborted | None) -> dict[str, Any] | None:
    if isinstance(outcome, Aborted):
        return {
            "aborted": True,
            "stage": outcome.stage,
            "reason": outcome.reason.value,
            "detail": outcome.detail,
        }
    if isinstance(outcome, BufferSum):
        corrupt = [list(pair) for pair in outcome.corrupt_shares]
        return {
            "aborted": False,
            "contributors": list(outcome.contributors),
            "corrupt_shares": corrupt,
        }
    return None


def _outcome_from(
    buffer_id: str, data: dict[str, Any] | None, arrays: dict[str, np.ndarray]
) -> BufferSum | Aborted | None:
    if data is None:
        return None
    if data["aborted"]:
        return Aborted(data["stage"], AbortReason(data["reason"]), data["detail"])
    corrupt = tuple((holder, owner) for holder, owner in data["corrupt_shares"])
    result = np.array(arrays["result"], dtype=np.uint32)
    return BufferSum(buffer_id, result, tuple(data["contributors"]), corrupt)
