"""Handing a consumer's deliveries on as pika reads them, not at the next ``process_events``.

pika's blocking channel reads the socket whenever it waits (for a publish's
confirm, a declaration's answer) and keeps every delivery it reads in memory
until the next ``process_data_events`` dispatches it. The aggregator's results
consumer holds a window of several whole chunk sets (their chunks go to disk),
so while it published a version pika could queue that window in memory:
measured at 100 MB, about 185 MB of the aggregator's peak RSS. A consumer can
instead have chosen deliveries handed on in pika's own delivery callback, as
soon as they are read; its callback then runs inside whatever blocking call
read them, so it must not use the channel itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

#: Per channel: consumer tag -> which deliveries (by their pika properties) go on at once.
REGISTRY = "_fedmq_eager"


def eager_consumer_tag(channel: BlockingChannel, eager: Callable[[Any], bool]) -> str | None:
    """A consumer tag to start a consumer with, whose deliveries ``eager`` accepts are handed on
    as they are read; ``None`` if this pika delivers differently (consume as usual then).
    """
    if not install():
        return None
    tag = f"fedmq-eager-{uuid.uuid4().hex}"
    registry: dict[str, Callable[[Any], bool]] = getattr(channel, REGISTRY, None) or {}
    registry[tag] = eager
    setattr(channel, REGISTRY, registry)
    return tag


def install() -> bool:
    """Route pika's delivery callback through ``deliver`` (once); False if it has none."""
    original = getattr(BlockingChannel, "_on_consumer_message_delivery", None)
    if original is None:
        return False
    if getattr(original, "fedmq_eager", False):
        return True

    def deliver(self: Any, impl: Any, method: Any, properties: Any, body: Any) -> None:
        eager = (getattr(self, REGISTRY, None) or {}).get(method.consumer_tag)
        info = self._consumer_infos.get(method.consumer_tag)  # noqa: SLF001
        callback = getattr(info, "on_message_callback", None)
        if eager is not None and callback is not None and eager(properties):
            callback(self, method, properties, body)
        else:
            original(self, impl, method, properties, body)

    deliver.fedmq_eager = True  # type: ignore[attr-defined]
    BlockingChannel._on_consumer_message_delivery = deliver  # noqa: SLF001
    return True
