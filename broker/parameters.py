"""pika connection parameters from settings: credentials, heartbeats, timeouts, TLS with
verification.
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit, urlunsplit

import pika

from broker.settings import BrokerSettings, read_secret

#: How long a publish may stay blocked by a broker resource alarm before we give up.
BLOCKED_CONNECTION_TIMEOUT = 60.0
#: Seconds a connection attempt (TCP, TLS and the AMQP handshake) may take.
CONNECT_TIMEOUT = 10.0


def _with_password_slot(url: str) -> str:
    """``amqps://user@host/`` -> ``amqps://user:@host/``: pika cannot parse a user without a
    password
    (the password then comes from ``amqp_password_file``)."""
    parts = urlsplit(url)
    if parts.username is None or parts.password is not None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace("@", ":@", 1)))


def connection_parameters(settings: BrokerSettings, url: str | None = None) -> pika.URLParameters:
    """pika parameters for ``url`` (default: the first address): heartbeat, timeouts, TLS with
    verification."""
    url = url or settings.primary_url
    params = pika.URLParameters(_with_password_slot(url))
    params.heartbeat = settings.heartbeat
    params.blocked_connection_timeout = BLOCKED_CONNECTION_TIMEOUT
    params.connection_attempts = 1
    params.socket_timeout = CONNECT_TIMEOUT
    # A frozen member accepts the TCP connection and never answers: give up on it in time to try
    # the next address (pika's default is 15 s).
    params.stack_timeout = CONNECT_TIMEOUT
    params.client_properties = {"connection_name": "fedmq"}
    if settings.amqp_password_file:
        params.credentials = pika.PlainCredentials(
            params.credentials.username, read_secret(settings.amqp_password_file)
        )
    if urlsplit(url).scheme == "amqps":
        context = ssl.create_default_context(cafile=settings.tls_ca_file)
        if settings.tls_cert_file:
            context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
        params.ssl_options = pika.SSLOptions(context, params.host)
    return params
