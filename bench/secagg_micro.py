"""``python -m bench.secagg_micro [--quick]``: timings and upload bytes of the SecAgg+ core.

Per worker: share_keys (Shamir + AEAD for k neighbours) and masked_input (clip,
weight, stochastic rounding, self mask, k pairwise masks) for d parameters.
At the aggregator: summing n masked inputs and the unmask stage (rebuilding
secrets, removing masks), without and with dropouts after the key sharing.
Upload bytes count the payload fields of a worker's four messages (no wire
framing) against a plain float32 update of d values.

Times are CPU seconds of this process (``time.process_time``; the work is
single-threaded), so that other load on the machine inflates them less than
wall-clock times; the load average is printed with the table.

Not a ``bench`` suite module (it has no ``run``): it prints its own table.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import TypeVar

import numpy as np

from secagg.buffer import BufferSetup
from secagg.client import SecAggClient
from secagg.ledger import BufferSum
from secagg.local import seeded_entropy
from secagg.messages import (
    AdvertiseKeys,
    AggregatorMessage,
    EncryptedShares,
    MaskedInput,
    NeighbourKeys,
    ShareInbox,
    UnmaskRequest,
    WorkerMessage,
)
from secagg.server import SecAggServer

T = TypeVar("T")


def expect(value: object, kind: type[T]) -> T:
    if not isinstance(value, kind):
        raise TypeError(f"expected a {kind.__name__}, got {type(value).__name__}")
    return value


def payload_bytes(message: WorkerMessage) -> int:
    """Bytes of the message's fields as they would travel (identities as UTF-8)."""
    ids = len(message.buffer_id.encode()) + len(message.sender.encode())
    if isinstance(message, AdvertiseKeys):
        return ids + len(message.encryption_key) + len(message.mask_key)
    if isinstance(message, EncryptedShares):
        sealed = sum(
            len(s.receiver.encode()) + len(s.nonce) + len(s.ciphertext) for s in message.shares
        )
        return ids + len(message.seed_commitment) + sealed
    if isinstance(message, MaskedInput):
        return ids + message.masked.nbytes
    shares = (*message.seed_shares, *message.key_shares)
    return ids + sum(len(r.owner.encode()) + len(r.share) for r in shares)


def setup_for(n: int, degree: int, dimension: int) -> BufferSetup:
    return BufferSetup(
        buffer_id="bench-buffer",
        cohort=tuple(f"worker-{i:03d}" for i in range(n)),
        dimension=dimension,
        degree=degree,
        threshold=(degree + 1) // 2 + 1,  # the smallest t with 2t > k + 1
        clip=1.0,
        max_weight=1.0,
        min_contributors=2,
    )


def run_one(n: int, degree: int, dimension: int, dropped: int) -> dict[str, float]:
    """One buffer of ``n`` workers; the last ``dropped`` share their keys and then send nothing."""
    setup = setup_for(n, degree, dimension)
    update = np.random.default_rng(0).standard_normal(dimension).astype(np.float32) * 1e-3
    clients = {u: SecAggClient(setup, u, entropy=seeded_entropy(0, u)) for u in setup.cohort}
    server = SecAggServer(setup)
    live = setup.cohort[: n - dropped]
    sent = dict.fromkeys(setup.cohort, 0)
    times: dict[str, list[float]] = {"share": [], "mask": [], "sum": []}

    def deliver(u: str, message: WorkerMessage) -> None:
        sent[u] += payload_bytes(message)
        start = time.process_time()
        server.receive(u, message)
        if isinstance(message, MaskedInput):
            times["sum"].append(time.process_time() - start)

    for u, client in clients.items():
        deliver(u, client.advertise_keys())
    requests = _by_recipient(server.advance())
    for u, client in clients.items():
        start = time.process_time()
        shares = client.share_keys(expect(requests[u], NeighbourKeys))
        times["share"].append(time.process_time() - start)
        deliver(u, shares)
    inboxes = _by_recipient(server.advance())
    for u in live:
        start = time.process_time()
        masked = clients[u].masked_input(expect(inboxes[u], ShareInbox), update, 1.0)
        times["mask"].append(time.process_time() - start)
        deliver(u, masked)
    unmask_requests = _by_recipient(server.advance())
    for u in live:
        deliver(u, clients[u].unmask(expect(unmask_requests[u], UnmaskRequest)))
    start = time.process_time()
    expect(server.advance(), BufferSum)
    times["unmask"] = [time.process_time() - start]
    return _summary(times, sent[live[0]], dimension)


def _summary(times: dict[str, list[float]], uploaded: int, dimension: int) -> dict[str, float]:
    return {
        "share_keys_s": float(np.median(times["share"])),
        "mask_s": float(np.median(times["mask"])),
        "sum_inputs_s": float(np.sum(times["sum"])),
        "unmask_s": times["unmask"][0],
        "upload_ratio": uploaded / (4 * dimension),
        "upload_bytes": uploaded,
    }


def _by_recipient(result: object) -> dict[str, AggregatorMessage]:
    messages = expect(result, tuple)
    return {
        m.recipient: m
        for m in messages
        if isinstance(m, NeighbourKeys | ShareInbox | UnmaskRequest)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.secagg_micro", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="d = 100k only, fewer workers")
    args = parser.parse_args(argv)
    dims = [100_000] if args.quick else [100_000, 1_000_000]
    # n = 60 invited for K = 50: sparse k = 10, 20, and the complete graph that choose_parameters
    # picks for n = 60 with a sixth dropping out; dropouts after key sharing exercise the removal
    # of pairwise masks.
    cases = [
        (22, 10, 0),
        (22, 20, 0),
        (60, 10, 0),
        (60, 20, 0),
        (60, 20, 6),
        (60, 59, 0),
        (60, 59, 10),
    ]
    if args.quick:
        cases = cases[:2]
    print(
        f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        "times are CPU time"
    )
    print(
        "| n | k | t | d | dropped | share_keys | masked_input | sum of inputs | unmask "
        "| upload / float32 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dimension in dims:
        for n, degree, dropped in cases:
            t = setup_for(n, degree, dimension).threshold
            print(
                _row(n, degree, t, dimension, dropped, run_one(n, degree, dimension, dropped)),
                flush=True,
            )
    return 0


def _row(n: int, degree: int, t: int, dimension: int, dropped: int, r: dict[str, float]) -> str:
    ms = {key: r[key] * 1e3 for key in ("share_keys_s", "mask_s", "sum_inputs_s", "unmask_s")}
    return (
        f"| {n} | {degree} | {t} | {dimension:,} | {dropped} | {ms['share_keys_s']:.1f} ms "
        f"| {ms['mask_s']:.1f} ms | {ms['sum_inputs_s']:.0f} ms | {ms['unmask_s']:.0f} ms "
        f"| {r['upload_ratio']:.4f} ({int(r['upload_bytes']):,} B) |"
    )


if __name__ == "__main__":
    raise SystemExit(main())
