"""docker compose runs with TLS on: the broker has no plain listener, no service dials plain AMQP,
and deploy/init-tls.sh makes the certificates once, with private keys only its owner can read.

Static checks of docker-compose.yml and docker-compose.cluster.yml (no Docker, as in
tests/unit/test_compose.py); tests/integration/test_compose_tls.py starts a node from the same
config and certificates.
"""

from __future__ import annotations

import ssl
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509

from aggregator.settings import AggregatorSettings
from broker.settings import BrokerSettings
from fedmq.status.settings import StatusSettings
from harness.compose import TEST_SECRETS, load, mounts
from harness.compose_overlay import merge
from harness.compose_tls import (
    AMQPS_PORT,
    BROKER_CERTS_MOUNT,
    CERTS_IN_CONTAINER,
    MANAGEMENT_TLS_PORT,
    config_files,
    generate,
    settings_of,
)
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[BrokerSettings]] = {
    "aggregator": AggregatorSettings,
    "aggregator-standby": AggregatorSettings,
    **{f"worker-{i}": WorkerSettings for i in range(8)},
    "status": StatusSettings,
}


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("compose") / "tls")


def _files(tls_dir: Path) -> dict[str, dict[str, Any]]:
    env = {**TEST_SECRETS, "FEDMQ_TLS_DIR": str(tls_dir)}
    base = load(ROOT / "docker-compose.yml", env)
    overlay = load(ROOT / "docker-compose.cluster.yml", env)
    cluster = merge(base, {k: v for k, v in overlay.items() if k[:2] != "x-"})
    return {"base": base, "cluster": cluster}


@pytest.fixture(scope="module", params=["base", "cluster"])
def config(request: pytest.FixtureRequest, tls_dir: Path) -> dict[str, Any]:
    return _files(tls_dir)[request.param]


def brokers(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in config["services"].items() if n.startswith("rabbitmq")}


def test_no_service_dials_plain_amqp(config: dict[str, Any]) -> None:
    dialled = {}
    for name, settings_cls in SETTINGS.items():
        settings = settings_cls(amqp_url=config["services"][name]["environment"]["AMQP_URL"])
        dialled[name] = {(urlsplit(u).scheme, urlsplit(u).port) for u in settings.amqp_urls}

    assert all(d == {("amqps", AMQPS_PORT)} for d in dialled.values()), dialled


def test_every_service_verifies_the_broker_with_the_mounted_ca(
    config: dict[str, Any], tls_dir: Path
) -> None:
    for name in SETTINGS:
        service = config["services"][name]
        ca_file = service["environment"]["FEDMQ_TLS_CA_FILE"]
        assert mounts(service)[ca_file] == f"{tls_dir}/ca.crt", name
    env = config["services"]["status"]["environment"]
    status = StatusSettings(
        amqp_url=env["AMQP_URL"],
        management_url=env["FEDMQ_MANAGEMENT_URL"],
        tls_ca_file=env["FEDMQ_TLS_CA_FILE"],
    )
    assert status.management_base() == f"https://rabbitmq:{MANAGEMENT_TLS_PORT}"


def test_the_broker_listens_on_tls_only_and_verifies_peers(config: dict[str, Any]) -> None:
    for name, service in brokers(config).items():
        files = config_files(service, ROOT)
        conf: dict[str, str] = {}
        for path in files.values():  # later files override earlier ones, as in RabbitMQ
            conf.update(settings_of(path.read_text()))

        assert conf["listeners.tcp"] == "none", name
        assert [k for k in conf if k.startswith("management.tcp")] == [], name
        assert conf["listeners.ssl.default"] == str(AMQPS_PORT)
        assert conf["management.ssl.port"] == str(MANAGEMENT_TLS_PORT)
        assert conf["ssl_options.verify"] == "verify_peer"
        for prefix in ("ssl_options", "management.ssl"):
            paths = [conf[f"{prefix}.{f}"] for f in ("cacertfile", "certfile", "keyfile")]
            assert all(p.startswith(CERTS_IN_CONTAINER) for p in paths), (name, paths)


def test_the_broker_gets_its_certificates_and_nothing_else_of_the_ca(
    config: dict[str, Any], tls_dir: Path
) -> None:
    entrypoint = (ROOT / "deploy" / "rabbitmq" / "entrypoint.sh").read_text()
    assert f"{BROKER_CERTS_MOUNT}/broker.key {CERTS_IN_CONTAINER.rstrip('/')}" in entrypoint
    for name, service in brokers(config).items():
        assert mounts(service)[BROKER_CERTS_MOUNT] == f"{tls_dir}/broker", name
    sources = [s for svc in config["services"].values() for s in mounts(svc).values()]
    assert str(tls_dir) not in sources and not any(s.endswith("ca.key") for s in sources)


def test_only_tls_ports_are_published(config: dict[str, Any]) -> None:
    published = {str(p) for svc in brokers(config).values() for p in svc.get("ports", [])}

    assert published == {
        f"127.0.0.1:{AMQPS_PORT}:{AMQPS_PORT}",
        f"127.0.0.1:{MANAGEMENT_TLS_PORT}:{MANAGEMENT_TLS_PORT}",
    }


def test_the_broker_certificate_names_every_host_the_services_dial(
    config: dict[str, Any], tls_dir: Path
) -> None:
    cert = x509.load_pem_x509_certificate((tls_dir / "broker" / "broker.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName))
    hosts = {
        url.split("@")[1].split(":")[0]
        for name in SETTINGS
        for url in config["services"][name]["environment"]["AMQP_URL"].split(",")
    }

    assert hosts <= names and "localhost" in names, (hosts, names)
    context = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "fedmq compose CA"),),)


def test_init_tls_keeps_keys_private_and_runs_once(tmp_path: Path) -> None:
    first = generate(tmp_path / "tls")
    before = {p: p.read_bytes() for p in first.rglob("*") if p.is_file()}

    generate(first)

    assert {p: p.read_bytes() for p in first.rglob("*") if p.is_file()} == before
    modes = {p.relative_to(first).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in before}
    assert modes == {
        "ca.key": 0o600,
        "ca.crt": 0o644,
        "broker/ca.crt": 0o644,
        "broker/broker.crt": 0o644,
        "broker/broker.key": 0o600,
    }
    assert stat.S_IMODE(first.stat().st_mode) == 0o700


def test_init_tls_reissues_a_deleted_broker_certificate_from_the_same_ca(tmp_path: Path) -> None:
    tls = generate(tmp_path / "tls")
    ca, old = (tls / "ca.crt").read_bytes(), (tls / "broker" / "broker.crt").read_bytes()
    (tls / "broker" / "broker.crt").unlink()
    (tls / "broker" / "broker.key").unlink()

    generate(tls)

    new = x509.load_pem_x509_certificate((tls / "broker" / "broker.crt").read_bytes())
    assert (tls / "ca.crt").read_bytes() == ca
    new.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
    assert new.serial_number != x509.load_pem_x509_certificate(old).serial_number
