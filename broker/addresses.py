"""A broker address list: ``AMQP_URL`` may name several cluster members, comma-separated.

Pure helpers: split and check the list, and the order in which a client tries
the members (from the one after the member it lost, so a dead node is tried
last, not first).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

SCHEMES = ("amqp", "amqps")


def split_urls(value: str) -> tuple[str, ...]:
    """``"amqp://a/%2F, amqp://b/%2F"`` -> both URLs; ``ValueError`` for an empty entry, a wrong
    scheme, or members that disagree on user or vhost (one identity, one federation)."""
    urls = tuple(part.strip() for part in value.split(","))
    if not all(urls):
        raise ValueError("an empty entry in the broker address list")
    for url in urls:
        if urlsplit(url).scheme not in SCHEMES:
            raise ValueError("every address must start with amqp:// or amqps://")
    if len({_identity(url) for url in urls}) > 1:
        raise ValueError("every address in the list must name the same user and vhost")
    return urls


def _identity(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.path or "/")


def rotation(count: int, start: int) -> list[int]:
    """The indexes of ``count`` addresses in the order to try them, beginning at ``start``."""
    if count < 1:
        raise ValueError("an address list has at least one entry")
    return [(start + step) % count for step in range(count)]


def after_loss(count: int, current: int | None, planned: int) -> int:
    """Where the next connect starts: past the member we were attached to, if we were."""
    return planned if current is None else (current + 1) % count
