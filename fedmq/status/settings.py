"""Settings of ``fedmq status``: the broker, and optionally its management API."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from pydantic import Field

from broker.settings import BrokerSettings

MANAGEMENT_PORT = 15672
#: The management API's HTTPS port, which ``auto`` tries for an amqps:// broker.
MANAGEMENT_TLS_PORT = 15671


class StatusSettings(BrokerSettings):
    """Where to look; ``fedmq status`` reads, it never consumes or changes anything."""

    management_url: str = Field(
        "auto",
        description=(
            "Management API base URL; `auto` tries http://<broker host>:15672 (for amqps:// "
            "https://<broker host>:15671, verified with the TLS CA file), `off` uses passive "
            "declares only."
        ),
    )
    management_user: str | None = Field(
        None, description="Management API user (default: the AMQP URL's user)."
    )
    management_password: str | None = Field(
        None, description="Management API password (default: the AMQP URL's)."
    )
    http_timeout: float = Field(3.0, gt=0, description="Seconds to wait for the management API.")
    dead_sample: int = Field(
        100, ge=0, le=100_000, description="Dead letters to inspect for their reasons (0 skips)."
    )
    max_age: float | None = Field(
        None,
        gt=0,
        description=(
            "Exit with status 3 unless the aggregator reported within this many seconds "
            "(healthchecks)."
        ),
    )

    def management_base(self) -> str | None:
        """The management API's base URL, or ``None`` when it is switched off."""
        if self.management_url == "off":
            return None
        if self.management_url == "auto":
            parts = urlsplit(self.primary_url)
            host = parts.hostname or "localhost"
            if parts.scheme == "amqps":
                return f"https://{host}:{MANAGEMENT_TLS_PORT}"
            return f"http://{host}:{MANAGEMENT_PORT}"
        return self.management_url.rstrip("/")

    def management_credentials(self) -> tuple[str, str]:
        parts = urlsplit(self.primary_url)
        user = self.management_user or unquote(parts.username or "guest")
        password = self.management_password or unquote(parts.password or "guest")
        return user, password

    @property
    def vhost(self) -> str:
        path = urlsplit(self.primary_url).path
        return unquote(path[1:]) if len(path) > 1 else "/"
