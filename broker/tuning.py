"""Tuning of pika's receive path for large messages (applied once, by ``AmqpSession``).

pika reads the socket 4 KiB at a time and appends each read to its frame
buffer (``bytes +=``), so assembling one 128 KiB AMQP frame copies ~2 MiB:
receiving a 40 MB model cost ~16x its size in copying. Reading up to one
frame per call makes that linear. Measured here (RabbitMQ 3.10 on loopback,
40 MB messages, prefetch 1): 8.6 -> 12.5 messages/s. Larger reads do worse:
pika then trims its buffer one frame at a time, which is quadratic again.
"""

from __future__ import annotations

from pika.adapters.utils import io_services_utils

#: One AMQP frame at RabbitMQ's default ``frame_max``.
RECV_BYTES = 128 * 1024


def tune_pika_receive(recv_bytes: int = RECV_BYTES) -> bool:
    """Raise pika's per-read size; False if this pika has no such knob (then nothing changes)."""
    transport = getattr(io_services_utils, "_AsyncTransportBase", None)
    if transport is None or not isinstance(getattr(transport, "_MAX_RECV_BYTES", None), int):
        return False
    transport._MAX_RECV_BYTES = max(transport._MAX_RECV_BYTES, recv_bytes)
    return True
