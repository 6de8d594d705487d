"""Lay one compose file over another as ``docker compose -f base -f overlay`` does.

The merge rules of the Compose Specification that our files use: mappings merge
key by key (``environment``, ``depends_on``, a service's other mappings), a
service's ``volumes`` merge by target path, ``ports`` add up, and any other
value (``command``, ``entrypoint``, a string) is replaced by the overlay's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _target(volume: Any) -> str:
    if isinstance(volume, Mapping):
        return str(volume.get("target", ""))
    parts = str(volume).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _merge_volumes(base: list[Any], overlay: list[Any]) -> list[Any]:
    merged = {_target(v): v for v in base}
    merged.update({_target(v): v for v in overlay})
    return list(merged.values())


def merge(base: Any, overlay: Any, key: str = "") -> Any:
    """``overlay`` laid over ``base`` (neither is changed)."""
    if isinstance(base, Mapping) and isinstance(overlay, Mapping):
        out = dict(base)
        for name, value in overlay.items():
            out[name] = merge(base[name], value, name) if name in base else value
        return out
    if isinstance(base, list) and isinstance(overlay, list):
        if key == "volumes":
            return _merge_volumes(base, overlay)
        if key == "ports":
            return base + [p for p in overlay if p not in base]
    return overlay
