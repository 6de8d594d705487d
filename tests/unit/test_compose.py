"""docker-compose.yml runs as is: compose accepts it, and everything it asks of fedmq exists.

Checked with nothing but Python (no Docker engine, no ``docker-compose`` binary): the file
is interpolated as Compose does it and validated against the Compose Specification's JSON
Schema (``harness.compose``); every service, volume and bind-mount source it names exists;
the CLI parser and the settings models check every command, flag and environment
variable; the Prometheus file must name the ports the code serves
(tests/unit/test_monitoring.py checks the metrics). ``.ci/run`` also runs
``docker-compose config`` on it after the tests when it can.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from aggregator.settings import AggregatorSettings
from fedmq.cli import build_parser
from fedmq.status.settings import MANAGEMENT_TLS_PORT, StatusSettings
from harness.compose import (
    MissingVariable,
    interpolate,
    load,
    mounts,
    reference_errors,
    schema_errors,
)
from harness.compose_tls import AMQPS_PORT, generate
from runtime.cliargs import settings_from_args
from runtime.observability import AGGREGATOR_METRICS_PORT, WORKER_METRICS_PORT
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
PASSWORDS = {
    "FEDMQ_ADMIN_PASSWORD": "admin-password-1",
    "FEDMQ_AGGREGATOR_PASSWORD": "aggregator-password-1",
    "FEDMQ_MONITOR_PASSWORD": "monitor-password-1",
    **{f"FEDMQ_WORKER_{i}_PASSWORD": f"worker-{i}-password-1" for i in range(8)},
    "GRAFANA_ADMIN_PASSWORD": "grafana-password-1",
}
WORKERS = [f"worker-{i}" for i in range(8)]
SETTINGS: dict[str, type[BaseSettings]] = {
    "aggregator": AggregatorSettings,
    "worker": WorkerSettings,
    "status": StatusSettings,
}
ENTRYPOINT_LINE = re.search(r"^ENTRYPOINT (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
assert ENTRYPOINT_LINE is not None, "the Dockerfile has no ENTRYPOINT in exec form"
DEFAULT_ENTRYPOINT = json.loads(ENTRYPOINT_LINE.group(1))


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tls = generate(tmp_path_factory.mktemp("compose") / "tls")  # what deploy/init-env.sh makes
    return load(COMPOSE, {**PASSWORDS, "FEDMQ_TLS_DIR": str(tls)})


def fedmq_services(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc for name, svc in config["services"].items() if svc.get("image") == "fedmq:local"
    }


def argv(service: dict[str, Any]) -> list[str]:
    return [*(service.get("entrypoint") or DEFAULT_ENTRYPOINT), *(service.get("command") or [])]


def test_compose_accepts_the_file(config: dict[str, Any]) -> None:
    assert schema_errors(config) == ""
    assert {"rabbitmq", "aggregator", *WORKERS} <= set(config["services"])
    assert fedmq_services(config).keys() == {"aggregator", "aggregator-standby", *WORKERS, "status"}


def test_the_schema_check_refuses_what_compose_refuses(config: dict[str, Any]) -> None:
    broken = copy.deepcopy(config)
    broken["services"]["worker-0"]["restart_policy"] = "always"  # no such key
    broken["services"]["aggregator"]["ports"] = 9464  # a list, not a number

    errors = schema_errors(broken)

    assert "restart_policy" in errors and "ports" in errors


def test_everything_the_file_names_is_defined(config: dict[str, Any]) -> None:
    assert reference_errors(config, ROOT) == []


def test_the_reference_check_finds_undefined_names(config: dict[str, Any]) -> None:
    broken = copy.deepcopy(config)
    broken["services"]["worker-0"]["depends_on"] = {"broker": {"condition": "service_healthy"}}
    broken["services"]["worker-0"]["volumes"] = ["worker-data:/data", "./no/such/dir:/x:ro"]

    errors = reference_errors(broken, ROOT)

    assert errors == [
        "worker-0: depends on unknown service broker",
        "worker-0: volume worker-data is not declared at the top level",
        "worker-0: bind-mount source ./no/such/dir does not exist",
    ]


def test_compose_refuses_to_start_without_passwords() -> None:
    partial = {k: v for k, v in PASSWORDS.items() if k != "FEDMQ_WORKER_3_PASSWORD"}
    partial["FEDMQ_TLS_DIR"] = "./deploy/tls"

    with pytest.raises(MissingVariable, match="deploy/init-env.sh") as refused:
        load(COMPOSE, partial)

    assert refused.value.name == "FEDMQ_WORKER_3_PASSWORD"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}-$A-$$A", "a-a-$A"),
        ("${UNSET}|${EMPTY}", "|"),
        ("${UNSET:-d}|${EMPTY:-d}|${A:-d}", "d|d|a"),
        ("${UNSET-d}|${EMPTY-d}|${A-d}", "d||a"),
        ("${UNSET:+r}|${EMPTY:+r}|${A:+r}", "||r"),
        ("${UNSET+r}|${EMPTY+r}|${A+r}", "|r|r"),
        ("${EMPTY?m}", ""),
    ],
)
def test_interpolation_follows_the_compose_rules(text: str, expected: str) -> None:
    assert interpolate({"k": [text]}, {"A": "a", "EMPTY": ""}) == {"k": [expected]}


@pytest.mark.parametrize("text", ["${UNSET:?m}", "${EMPTY:?m}", "${UNSET?m}"])
def test_interpolation_refuses_a_required_variable_without_a_value(text: str) -> None:
    with pytest.raises(MissingVariable, match="m"):
        interpolate(text, {"EMPTY": ""})


def test_every_variable_the_file_interpolates_is_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    example = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))

    assert used <= example, used - example


@pytest.mark.parametrize(
    "name", ["aggregator", "aggregator-standby", "worker-0", "worker-7", "status"]
)
def test_every_command_flag_and_variable_exists_and_validates(
    name: str, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = config["services"][name]
    command = argv(service)
    assert command[0] == "fedmq"
    parser, _ = build_parser()
    args = parser.parse_args(command[1:])  # an unknown command or flag exits here
    settings_cls = SETTINGS[args.command]
    env = service["environment"]
    unknown = [
        k
        for k in env
        if k != "AMQP_URL" and k.removeprefix("FEDMQ_").lower() not in settings_cls.model_fields
    ]
    assert not unknown, f"{name}: no such setting for {unknown}"
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))

    settings_from_args(settings_cls, args)  # every value validates


def test_healthcheck_commands_exist(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    test = config["services"]["aggregator"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "fedmq"]
    parser, _ = build_parser()
    args = parser.parse_args(test[2:])
    for key, value in config["services"]["aggregator"]["environment"].items():
        monkeypatch.setenv(key, str(value))

    settings = settings_from_args(StatusSettings, args)

    assert settings.max_age is not None and settings.management_base() is None
    assert config["services"]["rabbitmq"]["healthcheck"]["test"] == [
        "CMD",
        "rabbitmq-diagnostics",
        "-q",
        "ping",
    ]


def port_mapping(port: Any) -> tuple[str, int, int]:
    """(host ip, published, target) from compose v1's short form or v2's long form."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), int(port["published"]), int(port["target"])
    parts = str(port).split("/")[0].split(":")  # [ip:]published:target[/proto]
    return (parts[0] if len(parts) == 3 else ""), int(parts[-2]), int(parts[-1])


def test_ports_agree_across_compose_prometheus_and_code(config: dict[str, Any]) -> None:
    services = config["services"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}

    assert (
        int(services["aggregator"]["environment"]["FEDMQ_METRICS_PORT"]) == AGGREGATOR_METRICS_PORT
    )
    assert jobs["fedmq-aggregator"]["static_configs"][0]["targets"] == [
        f"aggregator:{AGGREGATOR_METRICS_PORT}"
    ]
    assert {int(services[w]["environment"]["FEDMQ_METRICS_PORT"]) for w in WORKERS} == {
        WORKER_METRICS_PORT
    }
    assert jobs["fedmq-workers"]["dns_sd_configs"][0] == {
        **jobs["fedmq-workers"]["dns_sd_configs"][0],
        "names": WORKERS,
        "port": WORKER_METRICS_PORT,
    }
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    published = {port_mapping(p) for p in services["rabbitmq"]["ports"]}
    assert published == {
        ("127.0.0.1", AMQPS_PORT, AMQPS_PORT),
        ("127.0.0.1", MANAGEMENT_TLS_PORT, MANAGEMENT_TLS_PORT),
    }
    # Nothing is published beyond this host's loopback.
    assert all(
        port_mapping(p)[0] == "127.0.0.1" for svc in services.values() for p in svc.get("ports", [])
    )
    assert (
        services["status"]["environment"]["FEDMQ_MANAGEMENT_URL"]
        == f"https://rabbitmq:{MANAGEMENT_TLS_PORT}"
    )


def test_each_worker_is_its_own_user_on_its_own_partition(config: dict[str, Any]) -> None:
    services = config["services"]

    for i, name in enumerate(WORKERS):
        env = services[name]["environment"]
        assert env["AMQP_URL"].startswith(f"amqps://fedmq-worker-{i}:")
        assert env["FEDMQ_PARTITION_INDEX"] == str(i) and env["FEDMQ_NUM_PARTITIONS"] == "8"
        assert "FEDMQ_WORKER_ID" not in env and "FEDMQ_CLAIM_PARTITION" not in env  # id = user
    assert services["aggregator"]["environment"]["FEDMQ_IDENTITY"] == "strict"
    assert services["status"]["environment"]["AMQP_URL"].startswith("amqps://fedmq-monitor:")


def test_the_definitions_template_is_what_fedmq_broker_definitions_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fedmq.cli import main

    workers = [f"fedmq-worker-{i}" for i in range(8)]
    assert (
        main(["broker", "definitions", "--namespace", "fedmq", "--vhost", "fedmq", *workers]) == 0
    )

    assert (
        capsys.readouterr().out == (DEPLOY / "rabbitmq" / "definitions.template.json").read_text()
    )


def test_users_vhost_and_passwords_match_the_definitions(config: dict[str, Any]) -> None:
    template = (DEPLOY / "rabbitmq" / "definitions.template.json").read_text()
    definitions = json.loads(template)
    users = {u["name"] for u in definitions["users"]}
    assert "guest" not in users and {v["name"] for v in definitions["vhosts"]} == {"fedmq"}
    assert set(re.findall(r"@([A-Z0-9_]+)@", template)) == set(
        config["services"]["rabbitmq"]["environment"]
    )
    for svc in fedmq_services(config).values():
        url = re.fullmatch(
            r"amqps://([^:]+):([^@]+)@rabbitmq:5671/fedmq", svc["environment"]["AMQP_URL"]
        )
        assert url is not None and url.group(1) in users and url.group(2) in PASSWORDS.values()


def test_the_standby_aggregator_shares_the_active_ones_state(config: dict[str, Any]) -> None:
    active, standby = config["services"]["aggregator"], config["services"]["aggregator-standby"]

    assert argv(standby) == argv(active)
    assert standby["volumes"] == active["volumes"]  # one state directory: its lock picks the active
    state_dir = standby["environment"]["FEDMQ_STATE_DIR"]
    assert any(state_dir.startswith(target) for target in mounts(standby))
    assert standby["environment"] == active["environment"]
