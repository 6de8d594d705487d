"""The physical limits every figure moves bytes against: a plain loopback TCP copy, and memcpy.

One thread writes a buffer through a TCP connection on 127.0.0.1 in 4 MiB
``sendall`` calls, another reads it with ``recv_into`` into a preallocated
buffer: the most a byte stream through the kernel's loopback can carry here,
with no AMQP, no framing and no broker (the broker's path is at least two such
copies: publisher to broker, broker to consumer). memcpy is one numpy copy of
the same bytes. Best of a few runs, each a ratio in the same minutes.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable

import numpy as np

from bench import Context, Row
from bench.timing import best_seconds, gbps

WRITE = 4 << 20


def socket_copy(payload: memoryview) -> None:
    """Move ``payload`` through a loopback TCP connection once."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        received = bytearray(len(payload))

        def read() -> None:
            conn, _ = server.accept()
            with conn:
                view, got = memoryview(received), 0
                while got < len(received):
                    n = conn.recv_into(view[got:], min(WRITE, len(received) - got))
                    if n == 0:
                        raise RuntimeError("loopback copy: connection closed early")
                    got += n

        reader = threading.Thread(target=read)
        reader.start()
        with socket.create_connection(("127.0.0.1", port)) as out:
            for start in range(0, len(payload), WRITE):
                out.sendall(payload[start : start + WRITE])
        reader.join()


def run(ctx: Context) -> Iterable[Row]:
    size = (32 if ctx.quick else 256) << 20
    data = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)
    repeat = 2 if ctx.quick else 5
    wire = best_seconds(lambda: socket_copy(memoryview(data.data)), repeat)
    memcpy = best_seconds(data.copy, repeat)
    ctx.log(f"loopback {gbps(size, wire):.2f} GB/s, memcpy {gbps(size, memcpy):.2f} GB/s")
    yield Row(
        "physical limit",
        f"loopback TCP copy, {size >> 20} MiB",
        f"{gbps(size, wire):.2f} GB/s",
        f"{gbps(size, memcpy):.2f} GB/s (memcpy)",
        memcpy / wire,
        "",
        None,
        f"load {os.getloadavg()[0]:.1f}",
    )
