"""Three private RabbitMQ nodes forming one cluster on this machine, for failover tests.

Each member is a ``RabbitNode`` (own ports, data directory, node name); they
share one Erlang cookie and find each other by classic-config peer discovery.
A low ``net_ticktime`` makes a frozen (SIGSTOPped) member count as gone within
seconds, and ``autoheal`` mends the partition when it comes back. Members can
be SIGKILLed, restarted, paused and resumed; ``destroy`` removes them all.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.rabbit_node import RabbitNode, free_port, port_open

#: Seconds of silence before a member counts as down (Erlang's distribution tick; default 60).
NET_TICKTIME = 4
SIZE = 3
FORM_TIMEOUT = 120.0
API_TIMEOUT = 5.0


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
    #: The management API answers the harness's questions (leader, members) in milliseconds,
    #: where each ``rabbitmqctl`` call boots an Erlang VM (seconds on a loaded machine).
    plugins: tuple[str, ...] = ("rabbitmq_management",)
    cookie: str = field(default_factory=lambda: secrets.token_hex(16).upper())
    nodes: list[RabbitNode] = field(init=False)
    management_ports: list[int] = field(init=False)

    def __post_init__(self) -> None:
        tag = f"fedmqc{os.getpid()}x{secrets.token_hex(3)}"
        self.nodes = [
            RabbitNode(base=self.base / f"n{i}", name=f"{tag}n{i}", plugins=self.plugins)
            for i in range(self.size)
        ]
        self.management_ports = [free_port() for _ in self.nodes]
        shared = cluster_config([n.node for n in self.nodes])
        for node, port in zip(self.nodes, self.management_ports, strict=True):
            node.extra_config = (
                f"{shared}management.tcp.port = {port}\nmanagement.tcp.ip = 127.0.0.1\n"
            )
            node.cookie = self.cookie

    def api(self, index: int, path: str) -> Any:
        """GET ``/api/<path>`` from member ``index`` as guest; ``None`` if it does not answer."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.management_ports[index]}/api/{path}",
            headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()},
        )
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    @property
    def urls(self) -> list[str]:
        return [n.amqp_url for n in self.nodes]

    @property
    def amqp_url(self) -> str:
        """Every member's URL, comma-separated (what ``AMQP_URL`` takes for failover)."""
        return ",".join(self.urls)

    def start(self) -> RabbitCluster:
        """Boot every member at once (each waits for its peers) and wait for one cluster."""
        for index in range(self.size):
            self.nodes[index].launch()
        for index in range(self.size):
            self.await_listener(index)
        self.await_members(self.size)
        return self

    def await_listener(self, index: int) -> None:
        """Wait until member ``index`` accepts AMQP connections (its last boot step).

        Polling the port rather than ``rabbitmqctl await_startup``: each ``rabbitmqctl`` call
        boots an Erlang VM, seconds on a loaded machine.
        """
        node = self.nodes[index]
        deadline = time.monotonic() + FORM_TIMEOUT
        while not port_open(node.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ node {node.node} did not start; see {node.base}/log")
            time.sleep(0.2)

    def boot(self, index: int) -> None:
        """Start a stopped member again (it rejoins from its data) and wait for its listener."""
        self.nodes[index].launch()
        self.await_listener(index)

    def running_members(self, via: int = 0) -> set[str]:
        """Names of the members ``nodes[via]`` sees running (empty if it cannot answer)."""
        nodes = self.api(via, "nodes?columns=name,running")
        return {n["name"] for n in nodes or [] if n.get("running")}

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
        self.boot(index)
        self.await_members(len(self.live()), via=index)

    def pause(self, index: int) -> None:
        os.kill(self.pid(index), signal.SIGSTOP)

    def resume(self, index: int) -> None:
        os.kill(self.pid(index), signal.SIGCONT)

    def index_of(self, node_name: str) -> int:
        return next(i for i, n in enumerate(self.nodes) if n.node == node_name)

    def queue_info(self, queue: str, vhost: str = "/") -> dict[str, Any]:
        """What a live member's management API says about ``queue`` (empty if none answers)."""
        path = f"queues/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(queue, safe='')}"
        for i in self.live():
            info = self.api(i, path)
            if isinstance(info, dict):
                return info
        return {}

    def quorum_leader(self, queue: str, vhost: str = "/") -> str | None:
        """The member leading quorum queue ``queue``."""
        leader = self.queue_info(queue, vhost).get("leader")
        return str(leader) if leader else None

    def queue_members(self, queue: str, vhost: str = "/") -> tuple[str, list[str]]:
        """(type, members) of ``queue``."""
        info = self.queue_info(queue, vhost)
        return str(info.get("type", "")), [str(m) for m in info.get("members") or []]

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
