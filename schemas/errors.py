"""The one error type the wire contract raises."""

from __future__ import annotations


class DecodeError(ValueError):
    """A message body or its properties do not satisfy the wire contract.

    ``reason`` is a short machine-friendly slug (``"unknown-dtype"``,
    ``"too-large"`` …) suitable for a dead-letter header and a metric label;
    ``detail`` is the human explanation.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class EncodeError(ValueError):
    """A message cannot be put on the wire (unsupported dtype, too large …)."""
