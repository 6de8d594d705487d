"""fedmq's broker errors. Nothing above ``broker`` sees a pika exception."""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every error raised by the broker layer."""


class BrokerUnavailable(BrokerError):
    """The broker could not be reached (after the configured retries)."""


class ConnectionLost(BrokerError):
    """An open connection or channel was closed underneath us; reconnect."""


class AccessRefused(BrokerError):
    """The broker refused the credentials or a permission (403 / ACCESS_REFUSED)."""


class NotFound(BrokerError):
    """A queue or exchange does not exist (404 NOT_FOUND)."""


class ResourceLocked(BrokerError):
    """An exclusive queue belongs to another connection (405 RESOURCE_LOCKED); the channel must be
    reset.
    """


class TopologyMismatch(BrokerError):
    """A resource exists with different arguments (406 PRECONDITION_FAILED on declare)."""


class PublishFailed(BrokerError):
    """A publish was not confirmed: nacked (e.g. a full queue) or unroutable."""

    def __init__(self, message: str, *, unroutable: bool = False) -> None:
        super().__init__(message)
        self.unroutable = unroutable


class MessageTooLarge(BrokerError):
    """A body exceeds ``max_message_bytes``; it was not sent (retrying cannot help)."""
