"""The last stage at the aggregator: which shares to ask for, rebuild the secrets, remove the masks.

For survivor u (sent its masked input) the self-mask seed b_u is rebuilt
and PRG(b_u) removed; pairwise masks between two survivors cancel by
themselves. For a worker v that shared its keys but sent no masked input,
its mask private key s_v is rebuilt and each surviving neighbour's pairwise
mask with v removed. Every rebuilt secret is checked (b_u against u's
commitment, s_v against v's advertised public key), so a wrong share can
make the buffer abort but never yield a wrong sum.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from secagg import shamir
from secagg.buffer import BufferSetup
from secagg.errors import Aborted, AbortReason, UnrecoverableSecret
from secagg.keys import key_pair, pair_mask_key, seed_commitment
from secagg.ledger import BufferSum, Ledger
from secagg.masking import add_signed, pair_mask, pair_sign, self_mask
from secagg.messages import UnmaskShares

STAGE = "unmask"


class _Abort(Exception):
    def __init__(self, aborted: Aborted) -> None:
        super().__init__(aborted.detail)
        self.aborted = aborted


def request_for(
    setup: BufferSetup, recipient: str, shared: Collection[str], masked: Collection[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(survivors, dropped) for ``recipient``: whose seed shares and whose key shares it reveals."""
    neighbours = setup.neighbours(recipient)
    survivors = (neighbours & set(masked)) | {recipient}
    dropped = neighbours & (set(shared) - set(masked))
    return tuple(sorted(survivors)), tuple(sorted(dropped))


def check_recoverable(
    setup: BufferSetup, shared: Collection[str], masked: Collection[str]
) -> Aborted | None:
    """Before anyone reveals a share: could each secret be rebuilt if all survivors answer?"""
    live = set(masked)
    for u in sorted(live):
        holders = len(setup.neighbours(u) & live) + 1
        if holders < setup.threshold:
            return _too_few("seed", u, holders, setup.threshold, stage="masked")
    for v in sorted(set(shared) - live):
        holders = len(setup.neighbours(v) & live)
        if holders and holders < setup.threshold:
            return _too_few("key", v, holders, setup.threshold, stage="masked")
    return None


def finish(setup: BufferSetup, ledger: Ledger) -> BufferSum | Aborted:
    """The unmasked sum of the survivors' inputs, or why it cannot be had."""
    survivors = sorted(ledger.masked)
    live = set(survivors)
    corrupt: list[tuple[str, str]] = []
    points = _revealed_points(setup, ledger.unmasks)
    try:
        seeds = {
            u: _recover(setup, ledger, u, points["seed"].get(u, {}), corrupt) for u in survivors
        }
        dropped = [v for v in sorted(set(ledger.bundles) - live) if setup.neighbours(v) & live]
        keys = {v: _recover(setup, ledger, v, points["key"].get(v, {}), corrupt) for v in dropped}
    except _Abort as e:
        return e.aborted
    total = ledger.total.copy()
    buffer_id, d = setup.buffer_id, setup.dimension
    for u in survivors:
        add_signed(total, self_mask(seeds[u], buffer_id=buffer_id, owner=u, dimension=d), -1)
    for v, private in keys.items():
        pair = key_pair(private)
        for u in sorted(setup.neighbours(v) & live):
            key = pair_mask_key(
                pair.private, ledger.adverts[u].mask_key, buffer_id=buffer_id, a=u, b=v
            )
            add_signed(total, pair_mask(key, dimension=d), -pair_sign(u, v))
    return BufferSum(buffer_id, total, tuple(survivors), tuple(sorted(corrupt)))


def _recover(
    setup: BufferSetup,
    ledger: Ledger,
    owner: str,
    points: dict[int, int],
    corrupt: list[tuple[str, str]],
) -> bytes:
    """Rebuild ``owner``'s seed (survivor) or mask key (dropout); note holders of wrong shares."""
    kind = "seed" if owner in ledger.masked else "key"
    if len(points) < setup.threshold:
        raise _Abort(_too_few(kind, owner, len(points), setup.threshold, stage=STAGE))
    if kind == "seed":
        commitment = ledger.bundles[owner].seed_commitment

        def check(secret: bytes) -> bool:
            return seed_commitment(secret, buffer_id=setup.buffer_id, owner=owner) == commitment
    else:
        public = ledger.adverts[owner].mask_key

        def check(secret: bytes) -> bool:
            return key_pair(secret).public == public

    try:
        recovered = shamir.recover(points, setup.threshold, check)
    except UnrecoverableSecret as e:
        detail = f"the {kind} of {owner} cannot be rebuilt from {len(points)} shares: {e}"
        raise _Abort(Aborted(STAGE, AbortReason.UNRECOVERABLE_SECRET, detail)) from e
    corrupt.extend((setup.cohort[x - 1], owner) for x in recovered.corrupt)
    return recovered.secret


def _revealed_points(
    setup: BufferSetup, unmasks: Mapping[str, UnmaskShares]
) -> dict[str, dict[str, dict[int, int]]]:
    """kind ("seed" or "key") -> owner -> {holder's x-coordinate: share}."""
    points: dict[str, dict[str, dict[int, int]]] = {"seed": {}, "key": {}}
    for holder, message in unmasks.items():
        x = setup.x_coordinate(holder)
        for kind, revealed in (("seed", message.seed_shares), ("key", message.key_shares)):
            for r in revealed:
                points[kind].setdefault(r.owner, {})[x] = shamir.share_value(r.share)
    return points


def _too_few(kind: str, owner: str, holders: int, threshold: int, *, stage: str) -> Aborted:
    detail = f"the {kind} of {owner} has {holders} live share holders, threshold {threshold}"
    return Aborted(stage, AbortReason.TOO_FEW_SHARES, detail)
