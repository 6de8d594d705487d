"""Read docker-compose.yml as Compose would, without Docker: interpolate, validate, cross-check.

``load`` parses the file (YAML anchors and ``<<`` merge keys included), substitutes
variables as the Compose Specification's interpolation rules say, and returns the
document. ``schema_errors`` checks a document against the Compose Specification's JSON
Schema as ``check-jsonschema`` ships it (``vendor.compose-spec``, a pip-installable and
maintained copy, so the test path needs neither the ``docker-compose`` binary nor a
Docker engine). ``reference_errors`` finds what the schema cannot: services, volumes and
bind-mount sources the file names but nothing defines.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

#: ``$$``, ``$NAME``, or ``${NAME}`` with an optional ``:-``, ``-``, ``:?``, ``?``, ``:+``, ``+``.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})"
)


#: A value for every secret the compose files require (docker-compose.cluster.yml's cookie
#: too), as deploy/init-env.sh would write them; tests add FEDMQ_TLS_DIR.
TEST_SECRETS = {
    "FEDMQ_ADMIN_PASSWORD": "admin-password-1",
    "FEDMQ_AGGREGATOR_PASSWORD": "aggregator-password-1",
    "FEDMQ_MONITOR_PASSWORD": "monitor-password-1",
    **{f"FEDMQ_WORKER_{i}_PASSWORD": f"worker-{i}-password-1" for i in range(8)},
    "GRAFANA_ADMIN_PASSWORD": "grafana-password-1",
    "FEDMQ_ERLANG_COOKIE": "cookie-1",
}


class MissingVariable(ValueError):
    """A ``${NAME:?message}`` (or ``?``) whose variable is unset: Compose refuses the file."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


def _substitute(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match.group("escaped"):
        return "$"
    name = match.group("bare") or match.group("name")
    op, arg = match.group("op"), match.group("arg") or ""
    value = env.get(name)
    present = value is not None and (value != "" or not (op or "").startswith(":"))
    if op is None:
        return value or ""
    if op.endswith("-"):
        return value if present and value is not None else arg
    if op.endswith("+"):
        return arg if present else ""
    if not present or value is None:
        raise MissingVariable(name, arg)
    return value


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """Every string in ``node`` with its variables substituted (keys stay as written)."""
    if isinstance(node, str):
        return _VARIABLE.sub(lambda m: _substitute(m, env), node)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    return node


def _environment_mapping(environment: Any) -> dict[str, Any]:
    """A service's ``environment`` as a mapping, from either of the forms Compose accepts."""
    if isinstance(environment, list):
        pairs = (str(item).partition("=") for item in environment)
        return {key: value for key, _, value in pairs}
    return dict(environment or {})


def load(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The compose file at ``path``, interpolated with ``env`` (no ``.env`` file is read)."""
    document = interpolate(yaml.safe_load(path.read_text()), env)
    for service in document.get("services", {}).values():
        if "environment" in service:
            service["environment"] = _environment_mapping(service["environment"])
    return dict(document)


def schema_errors(document: Mapping[str, Any]) -> str:
    """What the Compose Specification's schema says of ``document``; empty when it conforms."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "compose.json"
        target.write_text(json.dumps(document))
        result = subprocess.run(
            [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
            + ["--output-format", "text", str(target)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    return "" if result.returncode == 0 else (result.stdout + result.stderr).strip()


def mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's volumes as ``{target: source}``, from the short or the long syntax."""
    pairs = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            pairs[str(volume["target"])] = str(volume.get("source", ""))
        else:
            source, target = str(volume).split(":")[:2]
            pairs[target] = source
    return pairs


def _named_volumes(service: Mapping[str, Any]) -> list[str]:
    sources = mounts(service).values()
    return [s for s in sources if s and not s.startswith((".", "/", "~"))]


def _bind_sources(service: Mapping[str, Any]) -> list[str]:
    return [s for s in mounts(service).values() if s.startswith((".", "/"))]


def reference_errors(document: Mapping[str, Any], project_dir: Path) -> list[str]:
    """Names the file uses but does not define: services, volumes, bind-mount sources."""
    services = document.get("services", {})
    declared_volumes = set(document.get("volumes") or {})
    errors = []
    for name, service in services.items():
        depends = service.get("depends_on", [])
        errors += [f"{name}: depends on unknown service {d}" for d in depends if d not in services]
        errors += [
            f"{name}: volume {v} is not declared at the top level"
            for v in _named_volumes(service)
            if v not in declared_volumes
        ]
        errors += [
            f"{name}: bind-mount source {s} does not exist"
            for s in _bind_sources(service)
            if not (project_dir / s).exists()
        ]
    return errors
