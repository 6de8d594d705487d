"""A private RabbitMQ node on spare loopback ports, owned by one test.

Tests that restart the broker, or need TLS or a plugin, start their own node
so that they never disturb the machine's broker or other tests. It runs the
installed RabbitMQ with its own data directory, config, cookie and ports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

RABBIT_BIN = Path(os.environ.get("RABBITMQ_BIN_DIR", "/usr/lib/rabbitmq/bin"))
START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RabbitNode:
    """``start``/``stop``/``restart`` a node; ``amqp_url`` points at it (guest may connect)."""

    base: Path
    name: str = field(default_factory=lambda: f"fedmqtest{os.getpid()}x{free_port()}")
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    extra_config: str = ""
    #: Erlang terms for ``advanced.config``, e.g. ``{rabbit, [{channel_tick_interval, 1000}]}``.
    advanced_config: str = ""
    plugins: tuple[str, ...] = ()
    #: The Erlang cookie (cluster members share one); ``None``: Erlang makes one in ``base``.
    cookie: str | None = None
    #: ``False``: no plain AMQP listener of ours; ``extra_config`` opens ``port`` (e.g. TLS).
    tcp_listener: bool = True

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "RABBITMQ_NODE_PORT"}
        if self.tcp_listener:
            env["RABBITMQ_NODE_PORT"] = str(self.port)
        return {
            **env,
            "HOME": str(self.base),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _write_config(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        listener = f"listeners.tcp.1 = 127.0.0.1:{self.port}\n" if self.tcp_listener else ""
        config = f"{listener}loopback_users = none\n{self.extra_config}"
        (self.base / "rabbitmq.conf").write_text(config)
        (self.base / "enabled_plugins").write_text("[" + ",".join(self.plugins) + "].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "advanced.config").write_text(f"[{self.advanced_config}].\n")
        if self.cookie is not None:
            cookie = self.base / ".erlang.cookie"  # $HOME is base, where Erlang looks for it
            if not cookie.exists():
                cookie.write_text(self.cookie)
                cookie.chmod(0o400)

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl`` against this node."""
        return subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def launch(self) -> None:
        """Write the config and start the node detached, without waiting for it."""
        if not (RABBIT_BIN / "rabbitmq-server").exists():
            raise RuntimeError(f"RabbitMQ is not installed under {RABBIT_BIN}")
        self._write_config()
        subprocess.run(
            [str(RABBIT_BIN / "rabbitmq-server"), "-detached"],
            env=self._env(),
            cwd=self.base,  # crash dumps (erl_crash.dump, MnesiaCore.*) land here, not in the repo
            check=True,
            timeout=60,
        )

    def start(self) -> RabbitNode:
        self.launch()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.ctl(
                    "await_startup", "--timeout", "5", timeout=30
                ).returncode == 0 and port_open(self.port):
                    return self
            except subprocess.TimeoutExpired:
                pass  # on a loaded machine rabbitmqctl can be slow: poll until the deadline
            time.sleep(0.5)
        raise RuntimeError(f"RabbitMQ node {self.node} did not start; see {self.base / 'log'}")

    def stop(self) -> None:
        """Stop the node and wait until its AMQP port is closed."""
        self.ctl("stop", timeout=60)
        deadline = time.monotonic() + 60
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.2)

    def kill(self) -> None:
        """A hard crash: SIGKILL the Erlang VM (no shutdown); wait until its port is closed."""
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
            os.kill(int((self.base / "pid").read_text().strip()), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextlib.contextmanager
    def running(self) -> Iterator[RabbitNode]:
        """Start the node, hand it over, and destroy it (data and all) afterwards."""
        self.start()
        try:
            yield self
        finally:
            self.destroy()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
