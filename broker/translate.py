"""pika's exceptions, translated at the boundary into ``broker.errors`` (with what we were doing)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pika.exceptions as pe

from broker.errors import (
    AccessRefused,
    ConnectionLost,
    NotFound,
    PublishFailed,
    ResourceLocked,
    TopologyMismatch,
)


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Re-raise pika's exceptions as ``broker.errors`` (with what we were doing)."""
    try:
        yield
    except pe.UnroutableError as exc:
        raise PublishFailed(f"{action}: message was unroutable", unroutable=True) from exc
    except pe.NackError as exc:
        raise PublishFailed(
            f"{action}: broker refused the message (nack; is the queue full?)"
        ) from exc
    except (
        pe.ProbableAuthenticationError,
        pe.ProbableAccessDeniedError,
        pe.AuthenticationError,
    ) as exc:
        raise AccessRefused(f"{action}: access refused ({exc})") from exc
    except pe.ChannelClosedByBroker as exc:
        if exc.reply_code == 403:
            raise AccessRefused(f"{action}: {exc.reply_text}") from exc
        if exc.reply_code == 404:
            raise NotFound(f"{action}: {exc.reply_text}") from exc
        if exc.reply_code == 405:
            raise ResourceLocked(f"{action}: {exc.reply_text}") from exc
        if exc.reply_code == 406 and "user_id" in (exc.reply_text or ""):
            raise AccessRefused(f"{action}: {exc.reply_text}") from exc
        if exc.reply_code == 406 and "inequivalent" in (exc.reply_text or ""):
            raise TopologyMismatch(f"{action}: {exc.reply_text}") from exc
        raise ConnectionLost(
            f"{action}: channel closed by broker ({exc.reply_code} {exc.reply_text})"
        ) from exc
    except pe.ConnectionClosedByBroker as exc:
        if exc.reply_code == 403:
            raise AccessRefused(f"{action}: {exc.reply_text}") from exc
        raise ConnectionLost(
            f"{action}: connection closed by broker ({exc.reply_code} {exc.reply_text})"
        ) from exc
    except (pe.AMQPError, OSError) as exc:
        raise ConnectionLost(f"{action}: {type(exc).__name__}: {exc}") from exc
