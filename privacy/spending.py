"""A party's own privacy spending: a ledger, its epsilon, and (optionally) a file so it survives
restarts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from privacy.accountant import AccountantName, GaussianEvent, Ledger, epsilon

FORMAT = "fedmq-privacy-ledger"


class LedgerFileError(RuntimeError):
    """The ledger file exists but cannot be read: refuse to start rather than forget spending."""


def load_ledger(path: str | os.PathLike[str]) -> Ledger:
    """The saved ledger, or an empty one if the file does not exist yet."""
    file = Path(path)
    if not file.exists():
        return Ledger()
    try:
        data = json.loads(file.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        return Ledger.from_list(data["events"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LedgerFileError(
            f"{file} is unreadable ({exc}); move it away only if you accept forgetting its spending"
        ) from exc


def save_ledger(path: str | os.PathLike[str], ledger: Ledger, **summary: float) -> None:
    """Write atomically (temp file, fsync, rename); ``summary`` (e.g. epsilon) is stored for people
    to read.
    """
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump({"format": FORMAT, "events": ledger.to_list(), **summary}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, file)


class Spending:
    """The events charged to one party so far; saved after every charge when a ``path`` is given."""

    def __init__(
        self,
        *,
        delta: float,
        accountant: AccountantName = "rdp",
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.delta = delta
        self.accountant = accountant
        self.path = path
        self.ledger = load_ledger(path) if path else Ledger()

    def epsilon(self) -> float:
        return epsilon(self.ledger, self.delta, self.accountant)

    def charge(self, event: GaussianEvent, count: int = 1) -> float:
        """Compose ``count`` more ``event``s; returns the epsilon spent in total."""
        self.ledger = self.ledger.add(event, count)
        spent = self.epsilon()
        if self.path:
            save_ledger(self.path, self.ledger, epsilon=spent, delta=self.delta)
        return spent
