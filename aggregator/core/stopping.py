"""When a run is over: the stop conditions, as one pure decision."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StopRules:
    """Stop after ``max_versions``, ``max_seconds`` of training, or at ``target_accuracy``."""

    max_versions: int | None = None
    max_seconds: float | None = None
    target_accuracy: float | None = None

    def reason(
        self, *, version: int, elapsed: float, accuracy: float | None, closed: str | None
    ) -> str | None:
        """Why the run should stop now (``closed``: the strategy takes no more updates), or
        ``None``.
        """
        if self.max_versions is not None and version >= self.max_versions:
            return f"reached {self.max_versions} versions"
        if self.max_seconds is not None and elapsed >= self.max_seconds:
            return f"reached {self.max_seconds:g}s of training"
        if self.target_accuracy is not None and accuracy is not None:
            if accuracy >= self.target_accuracy:
                return f"reached target accuracy {self.target_accuracy}"
        if closed:
            return f"privacy budget spent: {closed}"
        return None
