"""A small client for RabbitMQ's management HTTP API (stdlib ``urllib``; no extra dependency).

Provisioning goes through this API rather than ``rabbitmqctl`` because it
works from any operator machine and against containers, over HTTPS, with an
ordinary administrator account, whereas ``rabbitmqctl`` needs the node's
Erlang cookie, which is full control of the node and its host's data.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.errors import AccessRefused, BrokerError, BrokerUnavailable
from broker.settings import read_secret

TIMEOUT = 15.0


class ManagementError(BrokerError):
    """The management API answered with an error status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class ManagementSettings(BaseSettings):
    """Where the management API is and the administrator credentials it takes (environment or files
    only).
    """

    model_config = SettingsConfigDict(
        env_prefix="FEDMQ_", extra="forbid", frozen=True, validate_default=True
    )

    management_url: str = Field(
        "http://localhost:15672", description="Management API base URL (http:// or https://)."
    )
    management_user: str = Field("admin", description="An administrator of the broker.")
    management_password: SecretStr | None = Field(
        None, description="Its password (prefer the _file variant)."
    )
    management_password_file: str | None = Field(
        None, description="File holding the administrator's password."
    )
    management_ca_file: str | None = Field(
        None, description="CA bundle to verify an https:// management URL."
    )

    @field_validator("management_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def password(self) -> str:
        if self.management_password_file:
            return read_secret(self.management_password_file)
        if self.management_password is not None:
            return self.management_password.get_secret_value()
        raise ValueError("set FEDMQ_MANAGEMENT_PASSWORD or --management-password-file")


def segment(name: str) -> str:
    """A URL path segment: vhosts, users and connection names may contain '/' and spaces."""
    return quote(name, safe="")


@dataclass
class ManagementClient:
    """JSON over HTTP basic auth; errors become ``broker.errors``."""

    url: str
    user: str
    password: str
    ca_file: str | None = None

    @classmethod
    def from_settings(cls, settings: ManagementSettings) -> ManagementClient:
        return cls(
            settings.management_url,
            settings.management_user,
            settings.password(),
            settings.management_ca_file,
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        allow_missing: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """``method /api/<path>``; the decoded JSON answer, or ``None`` (also for a 404 when
        ``allow_missing``).
        """
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/api/{path}", data=data, method=method)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        req.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        context = (
            ssl.create_default_context(cafile=self.ca_file)
            if self.url.startswith("https:")
            else None
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT, context=context) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and allow_missing:
                return None
            detail = exc.read().decode(errors="replace")[:300]
            if exc.code in (401, 403):
                raise AccessRefused(
                    f"management API {method} {path}: {exc.code} ({detail})"
                ) from exc
            raise ManagementError(
                f"management API {method} {path}: {exc.code} {detail}", status=exc.code
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise BrokerUnavailable(f"management API at {self.url} is unreachable: {exc}") from exc
        return json.loads(payload) if payload else None
