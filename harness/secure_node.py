"""A private RabbitMQ node with the management API and a verifying TLS listener.

Security tests create users, vhosts and permissions here, never on the
machine's shared broker. ``guest`` stays an administrator of this node (it is
the management account the tests provision with); every federation gets its
own vhost, where guest has no permissions unless a test grants them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.rabbit_node import RabbitNode, free_port
from harness.tls import CertificateAuthority, Issued


@dataclass
class SecureNode:
    node: RabbitNode
    ca: CertificateAuthority
    tls_port: int
    management_port: int

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def amqp_url(self, user: str, password: str, vhost: str) -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.node.port}/{vhost}"

    def amqps_url(self, user: str, password: str, vhost: str, host: str = "localhost") -> str:
        return f"amqps://{user}:{password}@{host}:{self.tls_port}/{vhost}"

    def client_cert(self, name: str) -> Issued:
        return self.ca.issue(name, server=False)


def start_secure_node(base: Path) -> SecureNode:
    ca = CertificateAuthority(base / "tls")
    server = ca.issue("rabbit-server", server=True)
    tls_port, management_port = free_port(), free_port()
    config = "\n".join(
        [
            f"listeners.ssl.1 = 127.0.0.1:{tls_port}",
            f"ssl_options.cacertfile = {ca.files.cert}",
            f"ssl_options.certfile = {server.cert}",
            f"ssl_options.keyfile = {server.key}",
            "ssl_options.verify = verify_peer",
            "ssl_options.fail_if_no_peer_cert = false",
            f"management.tcp.port = {management_port}",
            "management.tcp.ip = 127.0.0.1",
            "",
        ]
    )
    node = RabbitNode(base=base / "node", extra_config=config, plugins=("rabbitmq_management",))
    try:
        node.start()
    except BaseException:
        node.destroy()  # a node that did not come up in time must not outlive the test run
        raise
    return SecureNode(node, ca, tls_port, management_port)
