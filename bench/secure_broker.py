"""``python -m bench.secure_broker``: time per SecAgg+ buffer with every message through RabbitMQ.

One buffer of ``n`` invited workers (n = 1.2 K, the headroom for the 20 %
dropouts the service plans for by default; none drops out here) over a
model of ``d`` parameters: the aggregator's ``SecureFedBuff`` and ``n``
``SecAggClient`` objects in this process, and between them the broker. Each
stage is sent as the service sends it (``secure-round``: the keys stage one
broadcast to every worker's queue, each later stage one message per worker
with its own entries) and answered with one confirmed ``secure-upload`` per worker
into a durable queue (persistent, as the service sends them), which the
aggregator drains once every worker has sent (prefetch 4); every message
is encoded, published, consumed and decoded with the services' codec.

Time goes to five buckets, per party: **crypto** (X25519, HKDF, AEAD, Shamir:
advertising and sharing keys, revealing shares, and at the aggregator
rebuilding secrets), **masking** (clipping, rounding, the ChaCha20 mask
streams, the running sum and removing masks), **codec** (msgpack and schema
validation), **broker** (publishing with confirms, waiting for and
acknowledging deliveries) and **protocol** (the state machines'
bookkeeping). Everything runs on one machine, serially: the wall time per
buffer adds up every worker's work. The estimate with workers in parallel is
per stage the aggregator's time, the broadcast's delivery to all queues and
the slowest worker's own time.

Upload bytes are the encoded bodies of one worker's four uploads, against
4·d (a float32 vector); download bytes are the four round messages a worker
receives.

Not a ``bench`` suite module: it prints its own table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from aggregator.core.secure_fedbuff import SecureFedBuff
from broker.connection import AmqpSession
from broker.delivery import Delivery
from broker.names import BROADCAST_KEY, worker_key
from broker.properties import secure_round_properties, secure_upload_properties
from broker.settings import BrokerSettings
from schemas.codec import decode, encode
from schemas.secure import RoundStage, SecureRound, SecureUpload
from secagg import unmask
from secagg.client import SecAggClient
from secagg.ledger import BufferSum
from secagg.local import seeded_entropy
from secagg.messages import AggregatorMessage, NeighbourKeys, ShareInbox, UnmaskRequest
from secagg.wire import addressed_to, message_of, stage_messages, upload_of

STAGES: tuple[RoundStage, ...] = ("keys", "shares", "masked", "unmask")
BUCKETS = ("crypto", "masking", "codec", "broker", "protocol")
#: The aggregator's extra bucket: waiting until a broadcast reached every worker's queue and this
#: process (with workers on their own machines, that is their download, in parallel).
AGG_BUCKETS = (*BUCKETS, "fan-out")
WAIT_SECONDS = 600.0
#: The aggregator's consumer window. It consumes a stage's uploads only once every worker has
#: sent (one thread plays every party: a consumer left unread while workers compute stalls the
#: broker's send to it, and after 15 s the broker closes the connection).
PREFETCH = 4


class Clock:
    """Exclusive wall time per bucket: a nested bucket's time is not counted in its parent's."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._stack: list[list[Any]] = []

    @contextlib.contextmanager
    def __call__(self, bucket: str) -> Iterator[None]:
        start = time.perf_counter()
        self._stack.append([bucket, 0.0])
        try:
            yield
        finally:
            name, inner = self._stack.pop()
            elapsed = time.perf_counter() - start
            self.totals[name] += elapsed - inner
            if self._stack:
                self._stack[-1][1] += elapsed

    def total(self) -> float:
        return sum(self.totals.values())


#: The clock the aggregator's mask removal reports to (``_instrument``).
CURRENT: list[Clock] = [Clock()]


def _instrument() -> None:
    """Mask streams and sums inside the aggregator's unmasking count as masking, not crypto."""
    for name in ("self_mask", "pair_mask", "add_signed"):
        original: Callable[..., Any] = getattr(unmask, name)

        def timed(*args: Any, _f: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with CURRENT[0]("masking"):
                return _f(*args, **kwargs)

        setattr(unmask, name, timed)


@dataclass
class Bench:
    session: AmqpSession
    workers_session: AmqpSession
    prefix: str
    n: int
    dimension: int
    agg: Clock = field(default_factory=Clock)
    clocks: dict[str, Clock] = field(default_factory=dict)
    inbox: dict[str, list[Delivery]] = field(default_factory=dict)
    uploads: list[Delivery] = field(default_factory=list)
    upload_bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    download_bytes: int = 0
    stage_estimates: list[float] = field(default_factory=list)
    graph: tuple[int, int] = (0, 0)

    @property
    def exchange(self) -> str:
        return f"{self.prefix}.rounds"

    @property
    def upload_queue(self) -> str:
        return f"{self.prefix}.uploads"

    def declare(self, ids: tuple[str, ...]) -> None:
        self.session.declare_exchange(self.exchange, "direct", durable=False)
        self.session.declare_queue(self.upload_queue, durable=True)
        self.session.set_prefetch(PREFETCH)
        for worker in ids:
            queue = f"{self.prefix}.{worker}"
            self.workers_session.declare_queue(queue, exclusive=True)
            self.workers_session.bind_queue(queue, self.exchange, BROADCAST_KEY)
            self.workers_session.bind_queue(queue, self.exchange, worker_key(worker))
            self.inbox[worker] = []
            self.workers_session.consume(queue, self.inbox[worker].append)
            self.clocks[worker] = Clock()

    def delete(self, settings: BrokerSettings) -> None:
        """On a fresh connection: the bench's may have been lost."""
        with AmqpSession(settings, name="bench-secagg-cleanup") as session:
            session.delete_queue(self.upload_queue)
            session.delete_exchange(self.exchange)


def _wait(session: AmqpSession, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the broker did not deliver in time")
        session.process_events(0.05)


def run_buffer(bench: Bench, ids: tuple[str, ...], update: np.ndarray) -> float:
    """One buffer through the broker; its wall seconds."""
    model = {"w": np.zeros(bench.dimension, dtype=np.float32)}
    strategy = SecureFedBuff(
        buffer_size=max(2, round(bench.n / 1.2)), cohort_size=bench.n, clip=10.0
    )
    CURRENT[0] = bench.agg
    with bench.agg("protocol"):
        setup = strategy.open_buffer(
            run_id="bench", version=0, candidates=frozenset(ids), model=model
        )
    assert setup is not None
    bench.graph = (setup.degree, setup.threshold)
    clients = {u: SecAggClient(setup, u, entropy=seeded_entropy(0, u)) for u in ids}
    started = time.perf_counter()
    messages: tuple[AggregatorMessage, ...] = ()
    for stage in STAGES:
        messages_or_sum = _stage(bench, strategy, setup, clients, stage, messages, update, model)
        if isinstance(messages_or_sum, BufferSum):
            return time.perf_counter() - started
        messages = messages_or_sum
    raise AssertionError("the buffer did not conclude")


def _stage(
    bench: Bench,
    strategy: SecureFedBuff,
    setup: Any,
    clients: dict[str, SecAggClient],
    stage: RoundStage,
    messages: tuple[AggregatorMessage, ...],
    update: np.ndarray,
    model: dict[str, np.ndarray],
) -> tuple[AggregatorMessage, ...] | BufferSum:
    agg_before = bench.agg.total()
    _broadcast(bench, setup, stage, messages)
    with bench.agg("fan-out"):
        _wait(bench.workers_session, lambda: all(bench.inbox[u] for u in clients))
    slowest, taken = 0.0, 0
    for u, client in clients.items():
        slowest = max(slowest, _worker_turn(bench, u, client, stage, update))
    with bench.agg("broker"):
        consumer = bench.session.consume(bench.upload_queue, bench.uploads.append)
    while taken < len(clients):
        with bench.agg("broker"):
            _wait(bench.session, lambda: bool(bench.uploads))
        taken += _take_uploads(bench, strategy)
    with bench.agg("broker"):
        bench.session.cancel(consumer)
    with bench.agg("crypto" if stage == "unmask" else "protocol"):
        result = strategy.advance(model)
    bench.stage_estimates.append(bench.agg.total() - agg_before + slowest)
    if isinstance(result, BufferSum):
        return result
    assert isinstance(result, tuple), result
    return result


def _broadcast(
    bench: Bench, setup: Any, stage: RoundStage, messages: tuple[AggregatorMessage, ...]
) -> None:
    with bench.agg("protocol"):
        sent = stage_messages(setup, run_id="bench", version=0, stage=stage, messages=messages)
    props = secure_round_properties(setup.buffer_id, stage, None)
    for recipient, message in sent:
        with bench.agg("codec"):
            body = encode(message)
        bench.download_bytes += len(body) if recipient in (None, setup.cohort[0]) else 0
        key = BROADCAST_KEY if recipient is None else worker_key(recipient)
        with bench.agg("broker"):
            bench.session.publish(bench.exchange, key, body, props, mandatory=False)


def _worker_turn(
    bench: Bench, u: str, client: SecAggClient, stage: RoundStage, update: np.ndarray
) -> float:
    """One worker's answer to the stage; its own seconds (not counting the shared delivery)."""
    clock = bench.clocks[u]
    before = clock.total()
    delivery = bench.inbox[u].pop(0)
    with clock("codec"):
        round_ = decode(delivery.body, SecureRound)
    with clock("broker"):
        bench.workers_session.ack(delivery.delivery_tag)
    with clock("protocol"):
        request = addressed_to(round_, u) if stage != "keys" else None
    if stage == "keys":
        with clock("crypto"):
            answer: Any = client.advertise_keys()
    elif isinstance(request, NeighbourKeys):
        with clock("crypto"):
            answer = client.share_keys(request)
    elif isinstance(request, ShareInbox):
        with clock("masking"):
            answer = client.masked_input(request, update, 1.0)
    else:
        assert isinstance(request, UnmaskRequest)
        with clock("crypto"):
            answer = client.unmask(request)
    with clock("codec"):
        body = encode(upload_of(answer))
    bench.upload_bytes[u] += len(body)
    with clock("broker"):
        props = secure_upload_properties(client.setup.buffer_id, stage, u)
        props = replace(props, user_id=None)  # one guest connection: no identity to validate
        bench.workers_session.publish("", bench.upload_queue, body, props)
    return clock.total() - before


def _take_uploads(bench: Bench, strategy: SecureFedBuff) -> int:
    """Decode, hand over and acknowledge the uploads received so far; how many."""
    batch, bench.uploads[:] = list(bench.uploads), []
    for delivery in batch:
        with bench.agg("codec"):
            upload = decode(delivery.body, SecureUpload)
            message = message_of(upload)
        bucket = "masking" if upload.stage == "masked" else "protocol"
        with bench.agg(bucket):
            strategy.receive(upload.sender, message)
        with bench.agg("broker"):
            bench.session.ack(delivery.delivery_tag)
    return len(batch)


def measure(url: str, k: int, dimension: int) -> dict[str, Any]:
    n = round(1.2 * k)
    ids = tuple(f"w{i:03d}" for i in range(n))
    prefix = f"bench-secagg-{uuid.uuid4().hex[:8]}"
    # No heartbeats: one thread plays every party, and on a loaded machine the aggregator's unmask
    # step of a large buffer alone outlasted two heartbeats (the broker closed the connection).
    settings = BrokerSettings(amqp_url=url, namespace=prefix, heartbeat=0)
    update = np.random.default_rng(0).standard_normal(dimension).astype(np.float32) * 1e-3
    with (
        AmqpSession(settings, name="bench-secagg-agg") as session,
        AmqpSession(settings, name="bench-secagg-workers") as workers,
    ):
        bench = Bench(session, workers, prefix, n, dimension)
        bench.declare(ids)
        try:
            wall = run_buffer(bench, ids, update)
        finally:
            bench.delete(settings)
    return _result(bench, k, n, dimension, wall)


def _result(bench: Bench, k: int, n: int, dimension: int, wall: float) -> dict[str, Any]:
    worker_totals = {
        b: float(np.median([c.totals[b] for c in bench.clocks.values()])) for b in BUCKETS
    }
    uploaded = int(np.median(list(bench.upload_bytes.values())))
    return {
        "K": k,
        "n": n,
        "d": dimension,
        "wall": wall,
        "parallel": sum(bench.stage_estimates),
        "graph": bench.graph,
        "agg": {b: bench.agg.totals[b] for b in AGG_BUCKETS},
        "worker": worker_totals,
        "upload_ratio": uploaded / (4 * dimension),
        "upload_bytes": uploaded,
        "download_bytes": bench.download_bytes,
    }


def _share(totals: dict[str, float], bucket: str) -> str:
    return f"{100 * totals[bucket] / max(sum(totals.values()), 1e-12):.0f}"


def row(r: dict[str, Any]) -> str:
    agg, worker = r["agg"], r["worker"]
    agg_shares = " / ".join(_share(agg, b) for b in AGG_BUCKETS)
    worker_shares = " / ".join(_share(worker, b) for b in BUCKETS)
    return (
        f"| {r['K']} | {r['n']} | {r['graph'][0]} | {r['graph'][1]} | {r['d']:,} "
        f"| {r['wall']:.2f} s | {r['parallel']:.2f} s | {sum(agg.values()):.2f} s ({agg_shares}) "
        f"| {1e3 * sum(worker.values()):.0f} ms ({worker_shares}) "
        f"| {r['upload_ratio']:.4f} ({r['upload_bytes']:,} B) | {r['download_bytes']:,} B |"
    )


HEADER = (
    "| K | n | k | t | d | wall, serial | workers in parallel (est.) "
    "| aggregator (% crypto / masking / codec / broker / protocol / fan-out) "
    "| one worker, median (% crypto / masking / codec / broker / protocol) "
    "| upload / float32 | download / worker |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.secure_broker", description=__doc__)
    parser.add_argument(
        "--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    )
    parser.add_argument("--buffer-sizes", default="10,50,100", help="K values (n = 1.2 K)")
    parser.add_argument("--dimensions", default="100000,1000000")
    args = parser.parse_args(argv)
    _instrument()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(HEADER)
    for dimension in (int(x) for x in args.dimensions.split(",")):
        for k in (int(x) for x in args.buffer_sizes.split(",")):
            print(row(measure(args.amqp_url, k, dimension)), flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
