"""The compose file's TLS, outside Docker: its certificates, its broker config, its client settings.

``generate`` runs deploy/init-tls.sh, the generator deploy/init-env.sh runs, into a directory
of the caller's. ``broker_config`` reads the RabbitMQ config files the compose file mounts
into a broker service and rewrites only what a container provides (the paths its entrypoint
copies the certificates to, the fixed ports) so that a private node on loopback runs the
same listeners and TLS options. ``host_path`` maps a service's container path back to
the host file its volumes mount there.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.compose import mounts

ROOT = Path(__file__).resolve().parents[1]
INIT_TLS = ROOT / "deploy" / "init-tls.sh"
CONF_DIR = "/etc/rabbitmq/conf.d/"
#: Where deploy/rabbitmq/entrypoint.sh copies the mounted broker certificates (a tmpfs).
CERTS_IN_CONTAINER = "/run/fedmq/tls/"
#: Where the compose file mounts deploy/init-tls.sh's broker directory into a broker.
BROKER_CERTS_MOUNT = "/opt/fedmq-tls"
AMQPS_PORT = 5671
MANAGEMENT_TLS_PORT = 15671


def generate(directory: Path) -> Path:
    """Run deploy/init-tls.sh into ``directory`` (created; kept if it holds files already)."""
    subprocess.run(
        ["sh", str(INIT_TLS), str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("FEDMQ_TLS_")},
    )
    return directory


def config_files(service: Mapping[str, Any], project_dir: Path) -> dict[str, Path]:
    """The conf.d files mounted into a broker service: ``{name in conf.d: host file}``, in the
    order RabbitMQ reads them."""
    found = {
        target.removeprefix(CONF_DIR): project_dir / source
        for target, source in mounts(service).items()
        if target.startswith(CONF_DIR)
    }
    return dict(sorted(found.items()))


def settings_of(text: str) -> dict[str, str]:
    """``key = value`` lines of a rabbitmq.conf (comments and blank lines skipped)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line.split("#")[0])
    return {key.strip(): value.split("#")[0].strip() for key, value in pairs}


def _replace_once(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.M)
    if count != 1:
        raise ValueError(f"expected one line matching {pattern!r} in the broker config")
    return new


def broker_config(
    service: Mapping[str, Any], project_dir: Path, *, amqps_port: int, management_port: int
) -> str:
    """The TLS config file the compose file mounts into ``service``, for a node on loopback:
    certificates read from the mount's host source, listeners on the given loopback ports."""
    tls = config_files(service, project_dir)["35-fedmq-tls.conf"].read_text()
    certs = project_dir / mounts(service)[BROKER_CERTS_MOUNT]
    text = tls.replace(CERTS_IN_CONTAINER, f"{certs}/")
    text = _replace_once(
        text,
        rf"^listeners\.ssl\.default = {AMQPS_PORT}$",
        f"listeners.ssl.1 = 127.0.0.1:{amqps_port}",
    )
    return _replace_once(
        text,
        rf"^management\.ssl\.port = {MANAGEMENT_TLS_PORT}$",
        f"management.ssl.port = {management_port}\nmanagement.ssl.ip = 127.0.0.1",
    )


def host_path(service: Mapping[str, Any], project_dir: Path, container_path: str) -> Path:
    """The host file a service sees at ``container_path`` through its volumes."""
    for target, source in mounts(service).items():
        if container_path == target or container_path.startswith(f"{target}/"):
            return project_dir / source / container_path.removeprefix(target).lstrip("/")
    raise ValueError(f"nothing is mounted at {container_path}")
