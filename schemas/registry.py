"""Every message kind the codec accepts: the federation's three and secure aggregation's two."""

from __future__ import annotations

from schemas.messages import MESSAGE_TYPES, Message
from schemas.secure import SECURE_MESSAGE_TYPES

WIRE_TYPES: dict[str, type[Message]] = {**MESSAGE_TYPES, **SECURE_MESSAGE_TYPES}
