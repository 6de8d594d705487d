"""What the Dockerfile puts in the image, read and staged without a Docker engine.

``copied_sources`` lists the build-context paths its ``COPY`` instructions take;
``stage`` copies exactly those, minus what ``.dockerignore`` excludes, into a directory
laid out as the image's ``WORKDIR``; ``installed_packages`` is what ``pyproject.toml``
tells setuptools to install. A test installs the staged tree into a fresh virtual
environment and starts the services from it, as the image would.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
from pathlib import Path, PurePosixPath


def _copy_instructions(dockerfile: str) -> list[list[str]]:
    """The arguments of each ``COPY`` from the build context (``--from`` stages are not)."""
    copies = []
    for line in dockerfile.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0].upper() != "COPY":
            continue
        if any(w.startswith("--from") for w in words[1:]):
            continue
        copies.append([w for w in words[1:] if not w.startswith("--")])
    return copies


def copied_sources(dockerfile: str) -> list[str]:
    """Every source path (or pattern) the Dockerfile copies from the build context."""
    return [src for args in _copy_instructions(dockerfile) for src in args[:-1]]


def installed_packages(pyproject: str) -> set[str]:
    """The top-level packages ``[tool.setuptools.packages.find] include`` names."""
    # A pattern, not tomllib: that arrived in Python 3.11 and fedmq supports 3.10.
    section = re.search(
        r"^\[tool\.setuptools\.packages\.find\]\s*^include\s*=\s*(\[[^\]]*\])", pyproject, re.M
    )
    if section is None:
        raise ValueError("pyproject.toml has no [tool.setuptools.packages.find] include list")
    include: list[str] = json.loads(section.group(1))
    return {pattern.rstrip("*").rstrip(".") for pattern in include}


def ignore_patterns(dockerignore: str) -> list[str]:
    lines = (line.strip() for line in dockerignore.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def ignored(relative: PurePosixPath, patterns: list[str]) -> bool:
    """Whether ``.dockerignore`` keeps ``relative`` (or a folder above it) out of the context."""
    candidates = [PurePosixPath(*relative.parts[: i + 1]) for i in range(len(relative.parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for path in candidates:
            if fnmatch.fnmatchcase(str(path), pattern):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatchcase(path.name, bare):
                return True
    return False


def _copy_tree(source: Path, target: Path, root: Path, patterns: list[str]) -> None:
    for path in sorted([source, *source.rglob("*")] if source.is_dir() else [source]):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if ignored(relative, patterns) or path.is_dir():
            continue
        destination = target / path.relative_to(source) if source.is_dir() else target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def stage(root: Path, into: Path) -> list[Path]:
    """Copy what the Dockerfile copies (as Docker would, context filtered) into ``into``."""
    patterns = ignore_patterns((root / ".dockerignore").read_text())
    staged = []
    for args in _copy_instructions((root / "Dockerfile").read_text()):
        *sources, dest = args
        for source in sources:
            for match in sorted(root.glob(source)):
                if dest.endswith("/") or dest in (".", "./"):
                    target = into / dest / match.name
                else:
                    target = into / dest
                _copy_tree(match, target, root, patterns)
                staged.append(target)
    return staged
