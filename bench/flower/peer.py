"""Flower's deployment runtime on this machine: a SuperLink, one SuperNode per client and
``flwr run`` of ``bench/flower/app``, all insecure on loopback, from the benchmark's own
environment.

Every Flower process runs in a session of its own so that it is ended with the children it
starts (``flower-superexec``, ``flwr-serverapp``, one ``flwr-clientapp`` per message). Flower's
telemetry is off and its runtime dependency installation is disabled: the environment already
holds everything, and nothing is fetched while the benchmark runs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.flower.curves import Curve
from bench.flower.task import CLIENTS, SLOWDOWNS
from bench.procs import REPO
from bench.waiting import wait_until

APP = Path(__file__).resolve().parent / "app"
CONNECTION = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class FlowerDeployment:
    """The processes of one Flower federation, ended (each with its session) when the block ends."""

    def __init__(self, venv: Path, workdir: Path) -> None:
        self.bin, self.workdir = venv.resolve() / "bin", workdir.resolve()
        self.home = self.workdir / "flwr-home"  # absolute: the processes run in the workdir
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        path = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)
        self.env = {
            **os.environ,
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": path,
            "PYTHONUNBUFFERED": "1",
            "FLWR_HOME": str(self.home),
            "FLWR_TELEMETRY_ENABLED": "0",
        }

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [str(self.bin / args[0]), *args[1:]], stdout=log, stderr=subprocess.STDOUT,
            env=self.env, cwd=self.workdir, start_new_session=True,
        )  # fmt: skip
        log.close()
        self.procs.append(proc)
        return proc

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
            f'address = "127.0.0.1:{self.port}"\ninsecure = true\n'
        )
        self.spawn(
            "superlink", "flower-superlink", "--insecure", "--host", "127.0.0.1",
            "--port", str(self.port), "--disable-runtime-dependency-installation",
        )  # fmt: skip
        wait_until(lambda: listening(self.port), 120, "the SuperLink to listen")
        for i in range(CLIENTS):
            node = f"partition-id={i} slowdown={SLOWDOWNS[i]}"
            self.spawn(
                f"supernode-{i}", "flower-supernode", "--insecure",
                "--superlink", f"127.0.0.1:{self.port}", "--port", str(free_port()),
                "--node-config", node,
            )  # fmt: skip

    def nodes(self) -> int:
        """SuperNodes the SuperLink has activated (its log says so for each)."""
        log = self.workdir / "superlink.log"
        return log.read_text(errors="replace").count("Activated node_id") if log.exists() else 0

    def run(self, curve: Path, rounds: int, learning_rate: float) -> None:
        """``flwr run`` the app once every SuperNode is in, as fedmq's aggregator starts once
        every worker has attached (``flwr run`` returns once the run is submitted).
        """
        wait_until(lambda: self.nodes() >= CLIENTS, 300, "the SuperNodes to register")
        overrides = run_config(curve, rounds, learning_rate)
        submit = self.spawn("flwr-run", "flwr", "run", str(APP), CONNECTION, "-c", overrides)
        if submit.wait(timeout=300) != 0:
            raise RuntimeError(f"flwr run failed: see {self.workdir / 'flwr-run.log'}")

    def stop(self) -> None:
        """SIGTERM to each session, then SIGKILL to whatever is left in them."""
        groups = {proc.pid for proc in self.procs}
        signal_groups(groups, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        while members(groups):
            signal_groups(groups, signal.SIGKILL)
            time.sleep(0.2)
        for proc in self.procs:
            proc.wait()


def members(groups: set[int]) -> list[int]:
    """Live processes of these process groups (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) in groups:
            found.append(int(entry.name))
    return found


def signal_groups(groups: set[int], sig: signal.Signals) -> None:
    for group in groups:
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            pass


@contextmanager
def deployment(venv: Path, workdir: Path) -> Iterator[FlowerDeployment]:
    flower = FlowerDeployment(venv, workdir)
    try:
        flower.start()
        yield flower
    finally:
        flower.stop()


def run_config(curve: Path, rounds: int, learning_rate: float) -> str:
    """``flwr run -c``'s overrides of the app's run config (``app/pyproject.toml``)."""
    return f"curve-path='{curve}' num-server-rounds={rounds} learning-rate={learning_rate!r}"


def read_curve(path: Path) -> list[tuple[float, float]]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(float(e["elapsed"]), float(e["accuracy"])) for e in lines]


def flower_curve(venv: Path, workdir: Path, seconds: float, learning_rate: float) -> Curve:
    """Flower's evaluations over ``seconds`` of its ServerApp's clock (a run always goes the
    full length, as fedmq's do).
    """
    workdir = workdir.resolve()  # the ServerApp writes the curve from a directory of its own
    workdir.mkdir(parents=True, exist_ok=True)
    curve = workdir / "flower-curve.jsonl"
    with deployment(venv, workdir) as flower:
        flower.run(curve, rounds=100_000, learning_rate=learning_rate)
        deadline = time.monotonic() + seconds + 600  # the ServerApp still has to start
        while time.monotonic() < deadline:
            points = read_curve(curve)
            if points and points[-1][0] >= seconds:
                break
            time.sleep(1.0)
    return read_curve(curve)
