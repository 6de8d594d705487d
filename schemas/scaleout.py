"""Wire messages of scale-out FedBuff: edge aggregators and the root that steps the model.

Four kinds join the federation's (docs/protocol.md, section 10):

* ``edge-offer`` (an edge to the root, queue ``<ns>.root``): the update ids it
  holds, not yet applied. Repeated while it holds them; the root ignores what
  it already knows.
* ``step-plan`` (the root to every edge, fanout ``<ns>.plans``): the next
  version and exactly which update ids it contains, per edge. Repeated until
  every edge named has answered.
* ``edge-partial`` (an edge to the root): its exact fixed-point partial sum of
  the ids the plan gives it (int64 arrays, ``aggregator.core.partial``), the
  sum of their example counts, and the ids.
* ``steps-applied`` (the root to every edge): these ids are applied (in a
  committed version up to ``version``): ack and forget them. Sent once a step
  is committed, and again for any offered id already applied (an edge that
  crashed before it heard).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.arrays import Arrays
from schemas.messages import Message, UpdateId

EdgeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
#: A step holds at most this many updates (``aggregator.core.partial.MAX_TERMS``).
MAX_STEP = 1024
#: An offer names at most this many ids.
MAX_OFFER = 10_000
#: msgpack has one array type: a sequence arrives as a list and is held as a tuple.
Ids = Annotated[tuple[UpdateId, ...], Field(max_length=MAX_OFFER, strict=False)]
#: The ids of one step (or one edge's share of it).
StepIds = Annotated[tuple[UpdateId, ...], Field(min_length=1, max_length=MAX_STEP, strict=False)]


def _distinct(ids: tuple[str, ...]) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError("an update id appears twice")


class EdgeShare(BaseModel):
    """The ids of one step that one edge sums."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    edge: EdgeName
    update_ids: StepIds


Shares = Annotated[tuple[EdgeShare, ...], Field(min_length=1, max_length=MAX_STEP, strict=False)]


class EdgeOffer(Message):
    """An edge holds these updates (validated, not yet applied)."""

    kind: Literal["edge-offer"] = "edge-offer"
    edge: EdgeName
    update_ids: Ids

    @model_validator(mode="after")
    def _check(self) -> EdgeOffer:
        _distinct(self.update_ids)
        return self


class StepPlanMessage(Message):
    """The step that makes ``version``: exactly these updates, each summed by the edge named."""

    kind: Literal["step-plan"] = "step-plan"
    version: int = Field(ge=1)
    assigned: Shares

    @model_validator(mode="after")
    def _check(self) -> StepPlanMessage:
        _distinct(tuple(e.edge for e in self.assigned))
        ids = tuple(uid for e in self.assigned for uid in e.update_ids)
        _distinct(ids)
        if len(ids) > MAX_STEP:
            raise ValueError(f"a step holds at most {MAX_STEP} updates")
        return self


class EdgePartial(Message):
    """An edge's exact partial sum for one plan: int64 fixed point, 2^-32 units."""

    kind: Literal["edge-partial"] = "edge-partial"
    edge: EdgeName
    version: int = Field(ge=1, description="The plan's version this answers.")
    update_ids: StepIds
    mass: int = Field(ge=1, le=2**52, description="Sum of the updates' example counts.")
    arrays: Arrays

    @model_validator(mode="after")
    def _check(self) -> EdgePartial:
        _distinct(self.update_ids)
        if any(a.dtype.kind != "i" or a.dtype.itemsize != 8 for a in self.arrays.values()):
            raise ValueError("a partial's arrays are int64 fixed point")
        return self


class StepsApplied(Message):
    """These ids are in committed versions (the newest is ``version``): ack and forget them."""

    kind: Literal["steps-applied"] = "steps-applied"
    version: int = Field(ge=0)
    update_ids: Ids
    final: bool = Field(False, description="The run ended with ``version``: edges may stop.")

    @model_validator(mode="after")
    def _check(self) -> StepsApplied:
        _distinct(self.update_ids)
        return self


SCALEOUT_MESSAGE_TYPES: dict[str, type[Message]] = {
    "edge-offer": EdgeOffer,
    "step-plan": StepPlanMessage,
    "edge-partial": EdgePartial,
    "steps-applied": StepsApplied,
}
