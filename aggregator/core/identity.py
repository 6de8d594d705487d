"""Who sent an update? Pure checks on the broker-validated ``user_id``.

RabbitMQ refuses a publish whose ``user_id`` property differs from the
publishing connection's user, but does not check a message that has none.
So in ``strict`` mode the aggregator trusts exactly one thing about a
sender, the ``user_id`` property, and:

* rejects an update without ``user_id`` (``no-user-id``);
* with a roster, rejects a user it lists as revoked (``revoked-worker``) or
  does not list at all (``unknown-worker``);
* rejects an update whose body claims a ``worker_id`` other than its
  ``user_id`` (``identity-mismatch``): a worker's AMQP user name *is* its
  worker id, so nobody can file updates under another worker's name.

``open`` mode checks nothing; it exists for the single-user ``guest`` demo.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from aggregator.core.validation import Rejected

IdentityMode = Literal["open", "strict"]
#: What an operator asks for: ``auto`` is strict unless the aggregator connects as ``guest``.
IdentitySetting = Literal["auto", "open", "strict"]
GUEST = "guest"


def resolve_identity(setting: IdentitySetting, amqp_user: str) -> IdentityMode:
    """``auto``: strict for any provisioned user (``fedmq broker init`` made one), open only as the
    shared ``guest``, where the broker vouches for nobody (the laptop demo)."""
    if setting != "auto":
        return setting
    return "open" if amqp_user == GUEST else "strict"


def open_identity_refusal(mode: IdentityMode, defences: list[str]) -> str | None:
    """Why defences that key on worker identity must not run with ``open`` identity, or ``None``.

    With open identity anyone may send as any number of workers (rotating ``worker_id``), and
    the median, trimmed mean, Krum, the norm bound's per-worker votes, DP's once-per-release rule
    and the per-worker ledgers all count on one vote per worker.
    """
    if mode != "open" or not defences:
        return None
    return (
        f"{', '.join(defences)} need(s) authenticated workers, but identity is open (anyone can "
        "send as any worker id): provision users with `fedmq broker` and run with --identity "
        "strict"
    )


@dataclass(frozen=True)
class Roster:
    """The workers provisioned for a federation, and those revoked since."""

    active: frozenset[str] = frozenset()
    revoked: frozenset[str] = frozenset()

    def status(self, worker_id: str) -> Literal["active", "revoked", "unknown"]:
        if worker_id in self.revoked:
            return "revoked"
        return "active" if worker_id in self.active else "unknown"

    def with_worker(self, worker_id: str) -> Roster:
        """``worker_id`` (re-)admitted."""
        return Roster(self.active | {worker_id}, self.revoked - {worker_id})

    def without_worker(self, worker_id: str) -> Roster:
        """``worker_id`` revoked: its updates still queued are refused too."""
        return Roster(self.active - {worker_id}, self.revoked | {worker_id})

    def to_json(self) -> str:
        return (
            json.dumps({"active": sorted(self.active), "revoked": sorted(self.revoked)}, indent=1)
            + "\n"
        )

    @classmethod
    def from_json(cls, text: str) -> Roster:
        """Parse a roster; ``ValueError`` unless it is ``{"active": [...], "revoked": [...]}``."""
        data = json.loads(text)
        if not isinstance(data, dict) or set(data) - {"active", "revoked"}:
            raise ValueError('a roster is a JSON object with the lists "active" and "revoked"')
        lists = {key: data.get(key, []) for key in ("active", "revoked")}
        for key, names in lists.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f'roster "{key}" must be a list of worker ids')
        return cls(frozenset(lists["active"]), frozenset(lists["revoked"]))


@dataclass(frozen=True)
class IdentityPolicy:
    """How much the aggregator demands of a sender. ``roster=None``: any authenticated user may
    contribute.
    """

    mode: IdentityMode = "open"
    roster: Roster | None = None


def check_sender(policy: IdentityPolicy, user_id: str | None) -> Rejected | None:
    """Before decoding: is this delivery's validated user allowed to contribute at all?"""
    if policy.mode == "open":
        return None
    if not user_id:
        return Rejected(
            "no-user-id",
            "the message has no user_id property, so the broker did not vouch for its sender",
        )
    if policy.roster is None:
        return None
    status = policy.roster.status(user_id)
    if status == "revoked":
        return Rejected("revoked-worker", f"user {user_id!r} has been revoked")
    if status == "unknown":
        return Rejected(
            "unknown-worker", f"user {user_id!r} is not a provisioned worker of this federation"
        )
    return None


def check_claim(policy: IdentityPolicy, user_id: str | None, worker_id: str) -> Rejected | None:
    """After decoding: does the body's ``worker_id`` name the user who sent it?"""
    if policy.mode == "open" or worker_id == user_id:
        return None
    return Rejected(
        "identity-mismatch", f"user {user_id!r} sent an update claiming to be worker {worker_id!r}"
    )
