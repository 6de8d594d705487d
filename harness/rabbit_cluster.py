"""Three private RabbitMQ nodes forming one cluster on this machine, for failover tests.

Each member is a ``RabbitNode`` (own ports, data directory, node name); they
share one Erlang cookie and find each other by classic-config peer discovery.
A low ``net_ticktime`` makes a frozen (SIGSTOPped) member count as gone within
seconds, and ``autoheal`` mends the partition when it comes back. Members can
be SIGKILLed, restarted, paused and resumed; ``destroy`` removes them all.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness.rabbit_node import RabbitNode, port_open

#: Seconds of silence before a member counts as down (Erlang's distribution tick; default 60).
NET_TICKTIME = 4
SIZE = 3
FORM_TIMEOUT = 120.0


def cluster_config(nodes: list[str]) -> str:
    """The ``rabbitmq.conf`` lines every member shares: peers, partition handling, tick time."""
    peers = "".join(
        f"cluster_formation.classic_config.nodes.{i} = {node}\n"
        for i, node in enumerate(nodes, start=1)
    )
    return (
        "cluster_formation.peer_discovery_backend = classic_config\n"
        f"{peers}"
        "cluster_partition_handling = autoheal\n"
        f"net_ticktime = {NET_TICKTIME}\n"
    )


@dataclass
class RabbitCluster:
    """``start`` three members; ``kill``/``restart``/``pause``/``resume`` one by index."""

    base: Path
    size: int = SIZE
    plugins: tuple[str, ...] = ()
    cookie: str = field(default_factory=lambda: secrets.token_hex(16).upper())
    nodes: list[RabbitNode] = field(init=False)

    def __post_init__(self) -> None:
        tag = f"fedmqc{os.getpid()}x{secrets.token_hex(3)}"
        self.nodes = [
            RabbitNode(base=self.base / f"n{i}", name=f"{tag}n{i}", plugins=self.plugins)
            for i in range(self.size)
        ]
        shared = cluster_config([n.node for n in self.nodes])
        for node in self.nodes:
            node.extra_config = shared
            node.cookie = self.cookie

    @property
    def urls(self) -> list[str]:
        return [n.amqp_url for n in self.nodes]

    @property
    def amqp_url(self) -> str:
        """Every member's URL, comma-separated (what ``AMQP_URL`` takes for failover)."""
        return ",".join(self.urls)

    def start(self) -> RabbitCluster:
        """Boot every member at once (each waits for its peers) and wait for one cluster."""
        with ThreadPoolExecutor(self.size) as pool:
            list(pool.map(RabbitNode.start, self.nodes))
        self.await_members(self.size)
        return self

    def running_members(self, via: int = 0) -> set[str]:
        """Names of the members ``nodes[via]`` sees running (empty if it cannot answer)."""
        done = self.nodes[via].ctl("eval", "rabbit_nodes:all_running().", timeout=30)
        if done.returncode != 0:
            return set()
        return {n.node for n in self.nodes if f"'{n.node}'" in done.stdout or n.node in done.stdout}

    def await_members(self, count: int, *, via: int | None = None) -> None:
        """Wait until a live member sees ``count`` running members."""
        deadline = time.monotonic() + FORM_TIMEOUT
        while time.monotonic() < deadline:
            for i in [via] if via is not None else self.live():
                if len(self.running_members(i)) >= count:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"cluster under {self.base} did not reach {count} running members")

    def live(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if port_open(n.port)]

    def pid(self, index: int) -> int:
        return int((self.nodes[index].base / "pid").read_text().strip())

    def kill(self, index: int) -> None:
        """SIGKILL a member's Erlang VM and wait until its AMQP port is closed."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid(index), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while port_open(self.nodes[index].port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self, index: int) -> None:
        """Start a killed member again (it rejoins with its data) and wait until it is back."""
        self.nodes[index].start()
        self.await_members(len(self.live()), via=index)

    def pause(self, index: int) -> None:
        os.kill(self.pid(index), signal.SIGSTOP)

    def resume(self, index: int) -> None:
        os.kill(self.pid(index), signal.SIGCONT)

    def index_of(self, node_name: str) -> int:
        return next(i for i, n in enumerate(self.nodes) if n.node == node_name)

    def quorum_leader(self, queue: str, vhost: str = "/") -> str | None:
        """The member leading quorum queue ``queue`` (asked of any live member)."""
        for i in self.live():
            done = self.nodes[i].ctl(
                "list_queues", "-p", vhost, "name", "leader", "--no-table-headers", "-q"
            )
            if done.returncode != 0:
                continue
            for line in done.stdout.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == queue:
                    return parts[1]
        return None

    def destroy(self) -> None:
        """Stop every member (resuming a paused one first) and delete their data."""
        for i, node in enumerate(self.nodes):
            with contextlib.suppress(OSError, ValueError):
                self.resume(i)
            if port_open(node.port):
                with contextlib.suppress(Exception):
                    self.kill(i)
        shutil.rmtree(self.base, ignore_errors=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[RabbitCluster]:
        try:
            yield self.start()
        finally:
            self.destroy()
