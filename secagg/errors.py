"""Typed outcomes of the protocol: why a message was refused, why a buffer was abandoned."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Violation(str, Enum):
    """Why a message was refused (by the aggregator or by a worker)."""

    WRONG_BUFFER = "wrong-buffer"  # a message for another buffer: a replay or a misroute
    IDENTITY_MISMATCH = "identity-mismatch"  # the claimed sender is not the broker-validated one
    UNKNOWN_SENDER = "unknown-sender"  # not in the buffer's cohort
    WRONG_RECIPIENT = "wrong-recipient"
    WRONG_STAGE = "wrong-stage"  # late (the stage closed) or early
    NOT_A_SURVIVOR = "not-a-survivor"  # dropped out of an earlier stage
    EQUIVOCATION = "equivocation"  # a second, different message in one stage
    MALFORMED = "malformed"  # wrong type, length or range
    WEAK_KEY = "weak-key"  # a low-order or reused public key
    WITHHELD_SHARES = "withheld-shares"  # fewer shares than the protocol requires
    UNEXPECTED_SHARES = "unexpected-shares"  # shares nobody asked for
    CORRUPT_SHARE = "corrupt-share"  # fails authentication, or off the sharing polynomial
    DOUBLE_SHARE_REQUEST = "double-share-request"  # both secrets of one peer asked for
    INCONSISTENT_REQUEST = "inconsistent-request"  # contradicts what the worker saw earlier
    TOO_FEW_NEIGHBOURS = "too-few-neighbours"  # the worker's secrets could not be recovered
    TOO_FEW_SURVIVORS = "too-few-survivors"
    UNSAFE_PARAMETERS = "unsafe-parameters"
    BUFFER_CLOSED = "buffer-closed"


class AbortReason(str, Enum):
    """Why a buffer was abandoned (it never yields a sum)."""

    TOO_FEW_SURVIVORS = "too-few-survivors"  # fewer live workers than the threshold or K
    TOO_FEW_SHARES = "too-few-shares"  # a secret has fewer than t shares among survivors
    UNRECOVERABLE_SECRET = "unrecoverable-secret"  # shares disagree beyond correction


class ProtocolError(Exception):
    """Base of everything this package raises about the protocol (not about caller bugs)."""


class Refused(ProtocolError):
    """A worker refuses a message; it takes no further part in the buffer."""

    def __init__(self, reason: Violation, detail: str, *, culprit: str | None = None) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.culprit = culprit


class StageError(ProtocolError):
    """A state machine was driven out of order (a bug in the caller, or a closed buffer)."""


class UnrecoverableSecret(ProtocolError):
    """Shamir shares that fail to reconstruct a secret that passes its check."""


@dataclass(frozen=True)
class Accepted:
    """The message counts for its stage."""

    sender: str


@dataclass(frozen=True)
class Duplicate:
    """The very message already accepted (a redelivery): acknowledge it, change nothing."""

    sender: str


@dataclass(frozen=True)
class Rejected:
    """The message does not count; ``detail`` is for humans."""

    sender: str
    reason: Violation
    detail: str


@dataclass(frozen=True)
class Aborted:
    """The buffer is abandoned at ``stage``: no sum, ever."""

    stage: str
    reason: AbortReason
    detail: str


Receipt = Accepted | Duplicate | Rejected
