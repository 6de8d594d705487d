"""While training runs, >= 2,000 hostile messages hit the results path (property-based, hypothesis).

The aggregator must not crash, must keep its memory bounded, must
dead-letter each message with a reason (or recognise a replay as a
duplicate), must keep the model finite, and training must complete.
Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import collections
import json
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from broker.connection import AmqpSession
from broker.delivery import Delivery, Properties
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.settings import BrokerSettings
from broker.topology import declare_topology, declare_worker_queue
from harness.hostile import Hostile, hostile_messages
from harness.procs import Federation, pump_until, wait_for
from schemas.codec import decode, encode
from schemas.messages import ClientUpdate, ModelVersion
from tasks.builtin import make_trainer
from training.settings import TaskSettings
from training.trainer import TrainerContext

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

MESSAGES = 2_100
MAX_BYTES = 256 << 10
REPLAYS = 4
RSS_LIMIT_MB = 400
#: Peak RSS may exceed the RSS before the burst by at most this (prefetch 64 x bodies up to 512 KB =
#: 32 MB).
RSS_GROWTH_MB = 64


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    """Samples a process's peak RSS (VmHWM) until stopped or the process is gone."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            try:
                self.peak_kb = max(self.peak_kb, rss_kb(self.pid, "VmHWM"))
            except OSError:
                return


def current_model(session: AmqpSession, names: Names) -> ModelVersion:
    """Listen like a worker until a model version arrives."""
    got: list[Delivery] = []
    tag = session.consume(declare_worker_queue(session, names, "hostile-observer"), got.append)
    pump_until(session, lambda: got, 30, "a model version")
    session.cancel(tag)
    return decode(got[-1].body, ModelVersion, content_type=got[-1].properties.content_type)


def drain_dead(session: AmqpSession, names: Names) -> list[Delivery]:
    """Everything in the dead-letter queue (the aggregator has exited, so nothing more arrives)."""
    ready, _ = session.queue_counts(names.dead_queue)
    dead: list[Delivery] = []
    session.set_prefetch(500)

    def keep(d: Delivery) -> None:
        dead.append(d)
        session.ack(d.delivery_tag)

    tag = session.consume(names.dead_queue, keep)
    pump_until(session, lambda: len(dead) >= ready, 120, f"{ready} dead letters")
    session.cancel(tag)
    return dead


def generate_hostile(model: dict[str, np.ndarray]) -> list[Hostile]:
    """Draw the hostile messages up front (hypothesis, derandomized), so drawing is not on the
    training clock.
    """
    drawn: list[Hostile] = []

    @settings(
        max_examples=MESSAGES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile_messages(model, MAX_BYTES))
    def draw(message: Hostile) -> None:
        drawn.append(message)

    draw()
    return drawn


def model_shapes() -> dict[str, np.ndarray]:
    """Arrays shaped like the aggregator's model (built-in trainer, defaults)."""
    options = TaskSettings(num_partitions=2).trainer_options()
    return make_trainer(
        TrainerContext(role="aggregator", partition=0, num_partitions=2, seed=0, options=options)
    ).initial_weights()


def test_hostile_messages_are_dead_lettered_while_training_completes(
    federation: Federation, amqp_url: str
) -> None:
    hostile = generate_hostile(model_shapes())
    fed = federation
    agg = fed.aggregator(
        "--max-versions",
        "300",
        "--max-message-bytes",
        str(MAX_BYTES),
        "--max-staleness",
        "1000000",
        num_partitions=2,
    )
    for i in range(2):
        fed.worker(i, "--delay", "0.25", num_partitions=2)
    names = Names(fed.namespace)
    session = AmqpSession(BrokerSettings(amqp_url=amqp_url, namespace=fed.namespace))
    session.open()
    declare_topology(session, names)  # idempotent: do not race the aggregator for it
    sampler = RssSampler(agg.pid)
    sampler.start()
    wait_for(lambda: fed.latest_version() >= 10, 60, "version 10")
    model = current_model(session, names)
    baseline_kb = rss_kb(agg.pid, "VmRSS")
    replay_ids = [f"replay-{uuid.uuid4().hex}" for _ in range(REPLAYS)]
    replays = {
        uid: encode(
            ClientUpdate(
                update_id=uid,
                worker_id="replayer",
                base_version=model.version,
                num_examples=1,
                update_kind="weights",
                train_seconds=0.0,
                arrays=dict(model.arrays),
            )
        )
        for uid in replay_ids
    }
    for (
        uid,
        body,
    ) in replays.items():  # the originals: the current model, so applying them changes little
        session.publish(
            names.inbox_exchange, UPDATE_KEY, body, update_properties(uid, "guest", model.version)
        )
    # One burst while training runs: honest updates sent after it queue behind it, so training
    # cannot complete before every hostile message has been handled.
    sent: dict[str, Hostile] = {}
    replayed = 0
    for i, message in enumerate(hostile):
        if i % 7 == 3:  # interleave replays of applied update ids
            uid = replay_ids[i % REPLAYS]
            session.publish(
                names.inbox_exchange,
                UPDATE_KEY,
                replays[uid],
                update_properties(uid, "guest", model.version),
            )
            replayed += 1
        message_id = f"hostile-{i:05d}"
        props = Properties(
            content_type=message.content_type,
            message_id=message_id,
            headers={"x-hostile-kind": message.kind},
        )
        session.publish(names.inbox_exchange, UPDATE_KEY, message.body, props)
        sent[message_id] = message
    version_after_burst = fed.latest_version()

    assert agg.wait(timeout=300) == 0, fed.log("aggregator.log")[-3000:]
    sampler.done.set()
    sampler.join()
    dead = drain_dead(session, names)
    session.close()
    reasons = {d.properties.message_id: d.properties.headers.get("x-fedmq-reason") for d in dead}
    summary = fed.summary()
    assert summary is not None
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for message_id, message in sent.items():
        by_kind[message.kind][reasons.get(message_id) or "NOT DEAD-LETTERED"] += 1
    report = {
        "sent": len(sent) + replayed + REPLAYS,
        "hostile": len(sent),
        "replays": replayed,
        "duplicates": summary["duplicates"],
        "rejected_by_reason": summary["rejected"],
        "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "baseline_rss_mb": round(baseline_kb / 1024, 1),
        "peak_rss_mb": round(sampler.peak_kb / 1024, 1),
        "version_after_burst": version_after_burst,
        "final_version": summary["version"],
        "accuracy": summary["accuracy"],
    }
    print(json.dumps(report, indent=1))
    (fed.run_dir / "hostile-report.json").write_text(json.dumps(report, indent=1))

    assert len(sent) >= 2_000
    unexplained = {
        mid: (m.kind, reasons.get(mid))
        for mid, m in sent.items()
        if not reasons.get(mid) or (m.expected and reasons[mid] not in m.expected)
    }
    assert not unexplained, list(unexplained.items())[:10]
    assert summary["duplicates"] >= replayed
    applied_ids = {e["update_id"] for e in fed.audit() if e["event"] == "applied"}
    assert set(replay_ids) <= applied_ids
    assert summary["version"] >= 300 and summary["stopped_because"].startswith("reached")
    final = np.load(fed.run_dir / "final_model.npz")
    assert all(np.isfinite(final[name]).all() for name in final.files)
    assert summary["accuracy"] > 0.8
    assert sampler.peak_kb / 1024 < min(RSS_LIMIT_MB, baseline_kb / 1024 + RSS_GROWTH_MB), report
