"""Every message kind the codec accepts: the federation's three, secure aggregation's two and
scale-out FedBuff's four."""

from __future__ import annotations

from schemas.messages import MESSAGE_TYPES, Message
from schemas.scaleout import SCALEOUT_MESSAGE_TYPES
from schemas.secure import SECURE_MESSAGE_TYPES

WIRE_TYPES: dict[str, type[Message]] = {
    **MESSAGE_TYPES,
    **SECURE_MESSAGE_TYPES,
    **SCALEOUT_MESSAGE_TYPES,
}
