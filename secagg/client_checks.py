"""A worker's validation of what the aggregator sends it: each check raises ``Refused``.

The aggregator is curious and may be wrong: its messages are checked for
type and shape first, then against what the worker itself saw earlier.
"""

from __future__ import annotations

from collections.abc import Collection

from secagg import aead
from secagg.errors import Refused, Violation
from secagg.keys import WeakKey, check_public_key
from secagg.messages import NeighbourKeys, PeerKeys, SealedShare, ShareInbox, UnmaskRequest


def check_addressed(
    message: NeighbourKeys | ShareInbox | UnmaskRequest, *, buffer_id: str, identity: str
) -> None:
    """Meant for this buffer and this worker."""
    if message.buffer_id != buffer_id:
        raise Refused(Violation.WRONG_BUFFER, f"message for buffer {message.buffer_id!r}")
    if message.recipient != identity:
        raise Refused(Violation.WRONG_RECIPIENT, f"message for {message.recipient!r}")


def check_peer_entries(request: NeighbourKeys) -> None:
    peers = request.peers
    if not isinstance(peers, tuple) or not all(
        isinstance(p, PeerKeys) and isinstance(p.identity, str) for p in peers
    ):
        raise Refused(Violation.MALFORMED, "peers must be a tuple of PeerKeys")


def check_peer_key(peer: str, key: object, seen: Collection[bytes]) -> bytes:
    """A usable public key not seen before in this buffer (a reflected or shared key is refused)."""
    try:
        raw = check_public_key(key)
    except WeakKey as e:
        raise Refused(Violation.WEAK_KEY, f"{peer}: {e}", culprit=peer) from e
    if raw in seen:
        raise Refused(
            Violation.WEAK_KEY, f"{peer} uses a key already seen in this buffer", culprit=peer
        )
    return raw


def check_inbox_entries(inbox: ShareInbox) -> None:
    shares = inbox.shares
    if not isinstance(shares, tuple) or not all(_well_formed(s) for s in shares):
        raise Refused(Violation.MALFORMED, "shares must be a tuple of well-formed SealedShare")


def check_unmask_request(
    request: UnmaskRequest, *, identity: str, held: Collection[str], threshold: int
) -> None:
    """Seed shares for survivors, key shares for dropouts: a partition of the peers it holds.

    Never both secrets of one peer, never its own key share, and not when the
    buffer could not complete anyway (fewer than t survivors among its holders).
    """
    listed = (request.survivors, request.dropped)
    if not all(
        isinstance(names, tuple) and all(isinstance(n, str) for n in names) for names in listed
    ):
        raise Refused(Violation.MALFORMED, "survivors and dropped must be tuples of identities")
    survivors, dropped = set(request.survivors), set(request.dropped)
    if both := survivors & dropped:
        raise Refused(Violation.DOUBLE_SHARE_REQUEST, f"both secrets of {sorted(both)} asked for")
    if len(survivors) != len(request.survivors) or len(dropped) != len(request.dropped):
        raise Refused(Violation.INCONSISTENT_REQUEST, "a peer is listed twice")
    if identity not in survivors:
        raise Refused(
            Violation.INCONSISTENT_REQUEST,
            "this worker sent its masked input but is not a survivor",
        )
    if survivors | dropped != set(held) | {identity}:
        raise Refused(
            Violation.INCONSISTENT_REQUEST,
            "the request does not match the bundles this worker holds",
        )
    if len(survivors) < threshold:
        raise Refused(
            Violation.TOO_FEW_SURVIVORS, f"{len(survivors)} survivors, threshold {threshold}"
        )


def _well_formed(sealed: object) -> bool:
    return (
        isinstance(sealed, SealedShare)
        and isinstance(sealed.sender, str)
        and isinstance(sealed.receiver, str)
        and isinstance(sealed.nonce, bytes)
        and len(sealed.nonce) == aead.NONCE_BYTES
        and isinstance(sealed.ciphertext, bytes)
    )
