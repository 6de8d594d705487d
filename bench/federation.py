"""A benchmark's federation on the broker: a unique namespace, prefilled updates, aggregator runs,
cleanup.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench import Context
from bench.blob import FLOATS_ENV
from bench.procs import Process
from broker import chunked
from broker.connection import AmqpSession
from broker.names import UPDATE_KEY, Names
from broker.properties import update_properties
from broker.settings import BrokerSettings
from broker.topology import declare_listener, declare_topology, delete_resources, delete_topology
from runtime.eventlog import read_events
from schemas.codec import encode
from schemas.messages import ClientUpdate, UpdateKind

LISTENER = "bench-listener"


class BenchFederation:
    """Owns a namespace for a ``with`` block; everything it declared is deleted after."""

    def __init__(self, ctx: Context, label: str) -> None:
        self.ctx = ctx
        self.namespace = f"bench-{label}-{uuid.uuid4().hex[:8]}"
        self.names = Names(self.namespace)
        self.settings = BrokerSettings(
            amqp_url=ctx.amqp_url, namespace=self.namespace, max_message_bytes=256 << 20
        )
        self.session = AmqpSession(self.settings, name="fedmq-bench")
        self.extra_queues: list[str] = []
        self.extra_exchanges: list[str] = []
        self.processes: list[Process] = []
        self.run_dir = ctx.scratch(self.namespace)

    def __enter__(self) -> BenchFederation:
        self.session.open()
        declare_topology(self.session, self.names)
        self.listen(
            self.names.models_exchange
        )  # published versions are routed somewhere, as to a worker
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.processes:  # nothing outlives the benchmark, even one that failed
            proc.terminate()
            proc.wait(timeout=30)
        self.session.open()
        delete_topology(self.session, self.names)
        delete_resources(self.session, queues=self.extra_queues, exchanges=self.extra_exchanges)
        self.session.close()

    def listen(self, exchange: str) -> None:
        queue = f"{self.namespace}.{LISTENER}.{len(self.extra_queues)}"
        declare_listener(self.session, queue, exchange)
        self.extra_queues.append(queue)

    def prefill(
        self,
        floats: int,
        count: int,
        *,
        kind: UpdateKind = "weights",
        queue: str | None = None,
        chunks: bool = False,
    ) -> None:
        """Publish ``count`` distinct updates (persistent, confirmed) to the results queue or
        ``queue``; with ``chunks``, each as a chunk set of the session's ``chunk_bytes``.
        """
        arrays = {"w": np.zeros(floats, np.float32)}
        for i in range(count):
            update = ClientUpdate(
                update_id=f"bench-{uuid.uuid4().hex}",
                worker_id=f"w{i % 8}",
                base_version=0,
                num_examples=100,
                update_kind=kind,
                train_seconds=0.0,
                arrays=arrays,
            )
            props = update_properties(update.update_id, self.session.username, 0)
            exchange, key = ("", queue) if queue else (self.names.inbox_exchange, UPDATE_KEY)
            if not chunks:
                self.session.publish(exchange, key, encode(update), props)
                continue
            out = chunked.prepare(
                encode(update),
                chunk_bytes=self.settings.chunk_bytes,
                max_message_bytes=self.settings.max_message_bytes,
                set_id=update.update_id,
            )
            chunked.publish(self.session, exchange, key, out, props)

    def aggregator(
        self,
        *flags: str,
        floats: int | None = None,
        name: str = "aggregator",
        profile: Path | None = None,
    ) -> Process:
        """``python -m aggregator`` on this namespace: the blob trainer of ``floats`` elements, else
        the built-in one.

        With ``profile``, it runs under cProfile and leaves its statistics there.
        """
        module, profiler = (
            ("cProfile", ["-o", str(profile), "-m", "aggregator"])
            if profile
            else ("aggregator", [])
        )
        args = [
            *profiler,
            "--namespace",
            self.namespace,
            "--amqp-url",
            self.ctx.amqp_url,
            "--max-message-bytes",
            str(256 << 20),
            "--run-dir",
            str(self.run_dir / name),
            "--progress-interval",
            "3600",
            "--log-level",
            "warning",
            *self._trainer_flags(floats),
            *flags,
        ]
        return self.spawn(module, args, name, floats)

    def worker(self, worker_id: str, *flags: str, floats: int | None = None) -> Process:
        args = [
            "--namespace",
            self.namespace,
            "--amqp-url",
            self.ctx.amqp_url,
            "--max-message-bytes",
            str(256 << 20),
            "--worker-id",
            worker_id,
            "--log-level",
            "warning",
            "--events-file",
            str(self.events_path(worker_id)),
            *self._trainer_flags(floats),
            *flags,
        ]
        return self.spawn("worker", args, worker_id, floats)

    def spawn(
        self,
        module: str,
        args: list[str],
        name: str,
        floats: int | None = None,
        env: dict[str, str] | None = None,
    ) -> Process:
        """``python -m module args``, logged to ``<name>.log``, terminated at the latest when the
        block ends.
        """
        proc = Process(
            module, args, self.run_dir / f"{name}.log", env={**self._env(floats), **(env or {})}
        )
        self.processes.append(proc)
        return proc

    def events_path(self, worker_id: str) -> Path:
        return self.run_dir / f"{worker_id}.events.jsonl"

    def attached(self, worker_id: str) -> bool:
        path = self.events_path(worker_id)
        return path.exists() and any(e["event"] == "attached" for e in read_events(path))

    @staticmethod
    def _trainer_flags(floats: int | None) -> list[str]:
        return ["--trainer", "bench.blob:make_trainer"] if floats is not None else []

    @staticmethod
    def _env(floats: int | None) -> dict[str, str]:
        return {FLOATS_ENV: str(floats)} if floats is not None else {}

    def events(self, name: str, file: str) -> list[dict[str, Any]]:
        path = self.run_dir / name / file
        return list(read_events(path)) if path.exists() else []

    def audit(self, name: str = "aggregator") -> list[dict[str, Any]]:
        return self.events(name, "audit.jsonl")
