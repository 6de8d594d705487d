"""Wire messages of secure aggregation (SecAgg+ per FedBuff buffer).

Two kinds join the three of ``schemas.messages``:

* ``secure-round`` (aggregator to workers, on the models exchange): the
  buffer's public setup and the current stage, with every worker's share of
  that stage's messages (neighbours' public keys, AEAD-sealed share bundles,
  unmask requests). One broadcast per stage; nothing in it is secret.
* ``secure-upload`` (a worker to the aggregator, inbox exchange, routing key
  ``secure``): one stage's answer.

Both are validated here for shape and bounds only; the protocol's state
machines (``secagg.client``, ``secagg.server``) check everything else.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.arrays import Arrays
from schemas.messages import Message, WorkerId

RunId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
BufferId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")]
PublicKey = Annotated[bytes, Field(min_length=32, max_length=32)]
Digest = Annotated[bytes, Field(min_length=32, max_length=32)]
Nonce = Annotated[bytes, Field(min_length=12, max_length=12)]
Ciphertext = Annotated[bytes, Field(min_length=16, max_length=4096)]
ShareBytes = Annotated[bytes, Field(min_length=1, max_length=256)]
UploadStage = Literal["keys", "shares", "masked", "unmask"]
RoundStage = Literal["keys", "shares", "masked", "unmask"]
MAX_COHORT = 10_000
T = TypeVar("T")
#: msgpack has one array type: a sequence arrives as a list and is held as a tuple.
Seq = Annotated[tuple[T, ...], Field(max_length=MAX_COHORT, strict=False)]
MASKED_ARRAY = "masked"
MAX_NOISE_MULTIPLIER = 1000.0


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class WirePeerKeys(_Part):
    identity: WorkerId
    encryption_key: PublicKey
    mask_key: PublicKey


class WireSealedShare(_Part):
    sender: WorkerId
    receiver: WorkerId
    nonce: Nonce
    ciphertext: Ciphertext


class WireRevealedShare(_Part):
    owner: WorkerId
    share: ShareBytes


class WireUnmaskRequest(_Part):
    survivors: tuple[WorkerId, ...] = Field(max_length=MAX_COHORT, strict=False)
    dropped: tuple[WorkerId, ...] = Field(max_length=MAX_COHORT, strict=False)


class WireDistributedDp(_Part):
    """Distributed DP: each worker adds Skellam noise before masking (secure-aggregation.md)."""

    mechanism: Literal["skellam"] = "skellam"
    noise_multiplier: float = Field(
        gt=0,
        le=MAX_NOISE_MULTIPLIER,
        description="z: any sum of min_contributors or more carries at least z times the "
        "clipped sensitivity in noise std.",
    )


class SecureRound(Message):
    """One stage of a buffer: its public setup and what each cohort member is sent."""

    kind: Literal["secure-round"] = "secure-round"
    run_id: RunId
    version: int = Field(ge=0, description="The model version the cohort trains from.")
    buffer_id: BufferId
    cohort: tuple[WorkerId, ...] = Field(min_length=2, max_length=MAX_COHORT, strict=False)
    dimension: int = Field(ge=1, lt=1 << 31)
    degree: int = Field(ge=1)
    threshold: int = Field(ge=1)
    clip: float = Field(gt=0, description="L2 bound of an update before weighting.")
    max_weight: float = Field(gt=0, description="Largest weight a worker may apply.")
    min_contributors: int = Field(ge=2)
    distributed_dp: WireDistributedDp | None = Field(
        None, description="Noise every worker adds before masking; null: none."
    )
    stage: RoundStage
    neighbour_keys: dict[WorkerId, Seq[WirePeerKeys]] = Field(default_factory=dict)
    inboxes: dict[WorkerId, Seq[WireSealedShare]] = Field(default_factory=dict)
    unmask_requests: dict[WorkerId, WireUnmaskRequest] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _payload_matches_stage(self) -> SecureRound:
        present = {
            "shares": bool(self.neighbour_keys),
            "masked": bool(self.inboxes),
            "unmask": bool(self.unmask_requests),
        }
        for stage, has in present.items():
            if has and stage != self.stage:
                raise ValueError(f"a {self.stage} round carries {stage}-stage payloads")
        unknown = (set(self.neighbour_keys) | set(self.inboxes) | set(self.unmask_requests)) - set(
            self.cohort
        )
        if unknown:
            raise ValueError(f"payloads for workers outside the cohort: {sorted(unknown)[:3]}")
        return self


class SecureUpload(Message):
    """A cohort member's answer to one stage; ``sender`` must be its broker-validated user."""

    kind: Literal["secure-upload"] = "secure-upload"
    buffer_id: BufferId
    sender: WorkerId
    stage: UploadStage
    encryption_key: PublicKey | None = None
    mask_key: PublicKey | None = None
    seed_commitment: Digest | None = None
    shares: tuple[WireSealedShare, ...] = Field(default=(), max_length=MAX_COHORT, strict=False)
    seed_shares: tuple[WireRevealedShare, ...] = Field(
        default=(), max_length=MAX_COHORT, strict=False
    )
    key_shares: tuple[WireRevealedShare, ...] = Field(
        default=(), max_length=MAX_COHORT, strict=False
    )
    arrays: Arrays = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fields_match_stage(self) -> SecureUpload:
        filled = {
            "keys": self.encryption_key is not None or self.mask_key is not None,
            "shares": self.seed_commitment is not None or bool(self.shares),
            "masked": bool(self.arrays),
            "unmask": bool(self.seed_shares or self.key_shares),
        }
        for stage, has in filled.items():
            if has and stage != self.stage:
                raise ValueError(f"a {self.stage} upload carries {stage}-stage fields")
        if self.stage == "keys" and (self.encryption_key is None or self.mask_key is None):
            raise ValueError("a keys upload carries both public keys")
        if self.stage == "shares" and self.seed_commitment is None:
            raise ValueError("a shares upload carries the seed commitment")
        if self.stage == "masked":
            masked = self.arrays.get(MASKED_ARRAY)
            if set(self.arrays) != {MASKED_ARRAY} or masked is None:
                raise ValueError(f"a masked upload carries exactly the array {MASKED_ARRAY!r}")
            if masked.dtype.str not in ("<u4", "|u4", "=u4") or masked.ndim != 1:
                raise ValueError("the masked vector is one-dimensional uint32")
        return self


SECURE_MESSAGE_TYPES: dict[str, type[Message]] = {
    "secure-round": SecureRound,
    "secure-upload": SecureUpload,
}
