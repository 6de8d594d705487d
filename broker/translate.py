"""pika's exceptions, translated at the boundary into ``broker.errors`` (with the action)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pika.exceptions as pe
from pika.adapters.utils import connection_workflow as cw

from broker.errors import (
    AccessRefused,
    BrokerError,
    ConnectionLost,
    NotFound,
    PublishFailed,
    ResourceLocked,
    TopologyMismatch,
)

#: What a channel closed by the broker means, by reply code (406 by what its text says).
_CHANNEL_CLOSES: dict[int, type[BrokerError]] = {
    403: AccessRefused,
    404: NotFound,
    405: ResourceLocked,
}
_PRECONDITIONS: tuple[tuple[str, type[BrokerError]], ...] = (
    ("user_id", AccessRefused),
    ("inequivalent", TopologyMismatch),
)


def channel_closed(action: str, code: int, text: str | None) -> BrokerError:
    """The error a channel closed by the broker with ``code`` and ``text`` stands for."""
    kind = _CHANNEL_CLOSES.get(code)
    if code == 406:
        kind = next((k for word, k in _PRECONDITIONS if word in (text or "")), None)
    if kind is None:
        return ConnectionLost(f"{action}: channel closed by broker ({code} {text})")
    return kind(f"{action}: {text}")


def connection_closed(action: str, code: int, text: str | None) -> BrokerError:
    if code == 403:
        return AccessRefused(f"{action}: {text}")
    return ConnectionLost(f"{action}: connection closed by broker ({code} {text})")


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Re-raise pika's exceptions as ``broker.errors`` (with what we were doing)."""
    try:
        yield
    except pe.UnroutableError as exc:
        raise PublishFailed(f"{action}: message was unroutable", unroutable=True) from exc
    except pe.NackError as exc:
        refused = f"{action}: broker refused the message (nack; is the queue full?)"
        raise PublishFailed(refused) from exc
    except (
        pe.ProbableAuthenticationError,
        pe.ProbableAccessDeniedError,
        pe.AuthenticationError,
    ) as exc:
        raise AccessRefused(f"{action}: access refused ({exc})") from exc
    except pe.ChannelClosedByBroker as exc:
        raise channel_closed(action, exc.reply_code, exc.reply_text) from exc
    except pe.ConnectionClosedByBroker as exc:
        raise connection_closed(action, exc.reply_code, exc.reply_text) from exc
    # The connection workflow's own errors are not AMQPError: a handshake that times out against a
    # frozen cluster member (AMQPConnectorStackTimeout) would otherwise escape as a crash.
    except (
        pe.AMQPError,
        OSError,
        cw.AMQPConnectorException,
        cw.AMQPConnectionWorkflowFailed,
    ) as exc:
        raise ConnectionLost(f"{action}: {type(exc).__name__}: {exc}") from exc
