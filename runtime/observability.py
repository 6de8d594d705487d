"""Settings and plumbing that every long-running component shares: metrics endpoint, log format.

``ObservabilitySettings`` is mixed into the aggregator's and the worker's
settings, so ``--metrics-port`` / ``FEDMQ_METRICS_PORT`` and ``--log-json`` /
``FEDMQ_LOG_JSON`` mean the same thing everywhere.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.settings import mask_url

log = logging.getLogger("fedmq")

#: The port the aggregator's Prometheus endpoint uses in docker-compose.yml and the docs.
AGGREGATOR_METRICS_PORT = 9464
#: The port a worker's endpoint uses in docker-compose.yml (each replica has its own address).
WORKER_METRICS_PORT = 9465


class ObservabilitySettings(BaseSettings):
    """Where Prometheus metrics are served and how logs are written."""

    model_config = SettingsConfigDict(
        env_prefix="FEDMQ_", extra="forbid", frozen=True, validate_default=True
    )

    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Serve Prometheus metrics on this port (off when unset)."
    )
    metrics_address: str = Field(
        "127.0.0.1", description="Address of the metrics endpoint (0.0.0.0 inside a container)."
    )
    log_json: bool = Field(False, description="Log one JSON object per line instead of text.")


@dataclass
class MetricsServer:
    """A running Prometheus HTTP endpoint; ``close`` stops it."""

    server: Any
    thread: threading.Thread
    address: str
    port: int

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(
    registry: CollectorRegistry, settings: ObservabilitySettings
) -> MetricsServer | None:
    """Start the endpoint if a port is configured (port 0 picks a free one, for tests)."""
    if settings.metrics_port is None:
        return None
    server, thread = start_http_server(
        settings.metrics_port, addr=settings.metrics_address, registry=registry
    )
    address, port = str(server.server_address[0]), int(server.server_address[1])
    log.info("Prometheus metrics on http://%s:%d/metrics", address, port)
    return MetricsServer(server, thread, address, port)


SECRET_HINTS = ("password", "secret", "token")


def describe_settings(settings: BaseModel) -> str:
    """``name=value`` for every setting, URLs and anything secret-looking masked (for the startup
    line).
    """
    parts = []
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if name.endswith("_url") and isinstance(value, str):
            value = mask_url(value)
        elif any(hint in name for hint in SECRET_HINTS):
            value = "***"
        parts.append(f"{name}={value}")
    return " ".join(parts)
