"""The protocol's messages, in stage order (frozen dataclasses; the wire models wrap these).

Worker to aggregator: ``AdvertiseKeys``, ``EncryptedShares``, ``MaskedInput``,
``UnmaskShares``. Aggregator to one worker: ``NeighbourKeys``, ``ShareInbox``,
``UnmaskRequest``. Every message names its buffer; a worker's message names
its sender, which the aggregator checks against the broker-validated identity.
Nothing here is trusted: the receiving state machine validates every field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class AdvertiseKeys:
    """Stage 1: a worker's two fresh X25519 public keys for this buffer."""

    buffer_id: str
    sender: str
    encryption_key: bytes  # c_u: agrees the keys that encrypt share bundles
    mask_key: bytes  # s_u: agrees the pairwise mask keys; its private half is secret-shared


@dataclass(frozen=True)
class PeerKeys:
    identity: str
    encryption_key: bytes
    mask_key: bytes


@dataclass(frozen=True)
class NeighbourKeys:
    """Aggregator to ``recipient``: the keys of its neighbours that advertised."""

    buffer_id: str
    recipient: str
    peers: tuple[PeerKeys, ...]


@dataclass(frozen=True)
class SealedShare:
    """One AEAD-sealed bundle for ``receiver``: a share of the sender's seed and of its mask key."""

    sender: str
    receiver: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class EncryptedShares:
    """Stage 2: a sealed bundle per advertised neighbour, and a commitment to the self-mask seed."""

    buffer_id: str
    sender: str
    seed_commitment: bytes
    shares: tuple[SealedShare, ...]


@dataclass(frozen=True)
class ShareInbox:
    """Aggregator to ``recipient``: the bundles its neighbours sealed for it."""

    buffer_id: str
    recipient: str
    shares: tuple[SealedShare, ...]


@dataclass(frozen=True, eq=False)
class MaskedInput:
    """Stage 3: y_u in Z_{2^32}^d (the quantized weighted update plus all of the worker's masks)."""

    buffer_id: str
    sender: str
    masked: npt.NDArray[np.uint32]


@dataclass(frozen=True)
class UnmaskRequest:
    """Aggregator to ``recipient``: seed shares of ``survivors`` (itself included), key shares of
    ``dropped``."""

    buffer_id: str
    recipient: str
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]


@dataclass(frozen=True)
class RevealedShare:
    owner: str  # whose secret this is a share of
    share: bytes


@dataclass(frozen=True)
class UnmaskShares:
    """Stage 4: the shares asked for, and nothing else."""

    buffer_id: str
    sender: str
    seed_shares: tuple[RevealedShare, ...]
    key_shares: tuple[RevealedShare, ...]


WorkerMessage = AdvertiseKeys | EncryptedShares | MaskedInput | UnmaskShares
AggregatorMessage = NeighbourKeys | ShareInbox | UnmaskRequest
