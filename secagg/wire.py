"""Between the protocol's dataclasses and their wire models (``schemas.secure``).

Converting is where a hostile message first meets the protocol: the wire
model has already bounded every field; ``BufferSetup`` then checks the
parameters (``ValueError`` if unsafe), and the state machines the rest.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from schemas.secure import (
    MASKED_ARRAY,
    RoundStage,
    SecureRound,
    SecureUpload,
    WireDistributedDp,
    WirePeerKeys,
    WireRevealedShare,
    WireSealedShare,
    WireUnmaskRequest,
)
from secagg.buffer import BufferSetup
from secagg.messages import (
    AdvertiseKeys,
    AggregatorMessage,
    EncryptedShares,
    MaskedInput,
    NeighbourKeys,
    PeerKeys,
    RevealedShare,
    SealedShare,
    ShareInbox,
    UnmaskRequest,
    UnmaskShares,
    WorkerMessage,
)


def round_message(
    setup: BufferSetup,
    *,
    run_id: str,
    version: int,
    stage: RoundStage,
    messages: Iterable[AggregatorMessage],
) -> SecureRound:
    """The broadcast for ``stage``: the setup and every recipient's message of that stage."""
    keys: dict[str, tuple[WirePeerKeys, ...]] = {}
    inboxes: dict[str, tuple[WireSealedShare, ...]] = {}
    requests: dict[str, WireUnmaskRequest] = {}
    for message in messages:
        if isinstance(message, NeighbourKeys):
            keys[message.recipient] = tuple(_wire_peer(p) for p in message.peers)
        elif isinstance(message, ShareInbox):
            inboxes[message.recipient] = tuple(_wire_sealed(s) for s in message.shares)
        else:
            requests[message.recipient] = WireUnmaskRequest(
                survivors=message.survivors, dropped=message.dropped
            )
    return SecureRound(
        run_id=run_id,
        version=version,
        buffer_id=setup.buffer_id,
        cohort=setup.cohort,
        dimension=setup.dimension,
        degree=setup.degree,
        threshold=setup.threshold,
        clip=float(setup.clip),
        max_weight=float(setup.max_weight),
        min_contributors=setup.min_contributors,
        distributed_dp=_wire_noise(setup),
        stage=stage,
        neighbour_keys=keys,
        inboxes=inboxes,
        unmask_requests=requests,
    )


def stage_messages(
    setup: BufferSetup,
    *,
    run_id: str,
    version: int,
    stage: RoundStage,
    messages: Iterable[AggregatorMessage],
) -> list[tuple[str | None, SecureRound]]:
    """What the aggregator publishes for ``stage``, each with its recipient (``None``: everyone).

    A stage without payloads (keys) is one broadcast; a stage with payloads is one message per
    recipient carrying only its own entry, so that a worker downloads O(k) bytes rather than every
    cohort member's, whose sealed shares alone exceed the decoder's header limit for a complete
    graph of about 110 workers.
    """
    out: list[tuple[str | None, SecureRound]] = [
        (
            m.recipient,
            round_message(setup, run_id=run_id, version=version, stage=stage, messages=(m,)),
        )
        for m in messages
    ]
    if out:
        return out
    return [(None, round_message(setup, run_id=run_id, version=version, stage=stage, messages=()))]


def setup_of(message: SecureRound) -> BufferSetup:
    """The buffer's setup as the worker must use it (``ValueError`` if it is unsafe)."""
    noise = message.distributed_dp
    return BufferSetup(
        buffer_id=message.buffer_id,
        cohort=message.cohort,
        dimension=message.dimension,
        degree=message.degree,
        threshold=message.threshold,
        clip=message.clip,
        max_weight=message.max_weight,
        min_contributors=message.min_contributors,
        noise_multiplier=0.0 if noise is None else noise.noise_multiplier,
    )


def addressed_to(message: SecureRound, identity: str) -> AggregatorMessage | None:
    """What ``message`` asks of ``identity`` in its stage (``None``: nothing, e.g. in keys)."""
    buffer_id = message.buffer_id
    if message.stage == "shares" and identity in message.neighbour_keys:
        peers = tuple(
            PeerKeys(p.identity, p.encryption_key, p.mask_key)
            for p in message.neighbour_keys[identity]
        )
        return NeighbourKeys(buffer_id, identity, peers)
    if message.stage == "masked" and identity in message.inboxes:
        shares = tuple(_sealed(s) for s in message.inboxes[identity])
        return ShareInbox(buffer_id, identity, shares)
    if message.stage == "unmask" and identity in message.unmask_requests:
        request = message.unmask_requests[identity]
        return UnmaskRequest(buffer_id, identity, request.survivors, request.dropped)
    return None


def upload_of(message: WorkerMessage) -> SecureUpload:
    """A worker's protocol message as it goes on the wire."""
    if isinstance(message, AdvertiseKeys):
        return SecureUpload(
            buffer_id=message.buffer_id,
            sender=message.sender,
            stage="keys",
            encryption_key=message.encryption_key,
            mask_key=message.mask_key,
        )
    if isinstance(message, EncryptedShares):
        return SecureUpload(
            buffer_id=message.buffer_id,
            sender=message.sender,
            stage="shares",
            seed_commitment=message.seed_commitment,
            shares=tuple(_wire_sealed(s) for s in message.shares),
        )
    if isinstance(message, MaskedInput):
        masked = np.ascontiguousarray(message.masked, dtype="<u4")
        return SecureUpload(
            buffer_id=message.buffer_id,
            sender=message.sender,
            stage="masked",
            arrays={MASKED_ARRAY: masked},
        )
    return SecureUpload(
        buffer_id=message.buffer_id,
        sender=message.sender,
        stage="unmask",
        seed_shares=tuple(
            WireRevealedShare(owner=r.owner, share=r.share) for r in message.seed_shares
        ),
        key_shares=tuple(
            WireRevealedShare(owner=r.owner, share=r.share) for r in message.key_shares
        ),
    )


def message_of(upload: SecureUpload) -> WorkerMessage:
    """The protocol message a validated upload carries."""
    if upload.stage == "keys":
        assert upload.encryption_key is not None and upload.mask_key is not None  # validated
        return AdvertiseKeys(
            upload.buffer_id, upload.sender, upload.encryption_key, upload.mask_key
        )
    if upload.stage == "shares":
        assert upload.seed_commitment is not None  # validated
        shares = tuple(_sealed(s) for s in upload.shares)
        return EncryptedShares(upload.buffer_id, upload.sender, upload.seed_commitment, shares)
    if upload.stage == "masked":
        return MaskedInput(upload.buffer_id, upload.sender, upload.arrays[MASKED_ARRAY])
    return UnmaskShares(
        upload.buffer_id,
        upload.sender,
        tuple(RevealedShare(r.owner, r.share) for r in upload.seed_shares),
        tuple(RevealedShare(r.owner, r.share) for r in upload.key_shares),
    )


def _wire_noise(setup: BufferSetup) -> WireDistributedDp | None:
    if setup.noise_multiplier == 0:
        return None
    return WireDistributedDp(noise_multiplier=float(setup.noise_multiplier))


def _wire_peer(peer: PeerKeys) -> WirePeerKeys:
    return WirePeerKeys(
        identity=peer.identity, encryption_key=peer.encryption_key, mask_key=peer.mask_key
    )


def _wire_sealed(share: SealedShare) -> WireSealedShare:
    return WireSealedShare(
        sender=share.sender, receiver=share.receiver, nonce=share.nonce, ciphertext=share.ciphertext
    )


def _sealed(share: WireSealedShare) -> SealedShare:
    return SealedShare(share.sender, share.receiver, share.nonce, share.ciphertext)
