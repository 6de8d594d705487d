"""The container image starts: what the Dockerfile copies installs and runs, without Docker.

The tree the Dockerfile's ``COPY`` lines take (filtered by ``.dockerignore``) is staged in a
temporary directory and installed from there into a fresh virtual environment, as the
image's ``pip install .`` does. To stay fast and offline the environment borrows this
one's third-party libraries through a ``.pth`` file and the install uses ``--no-deps
--no-build-isolation``: the libraries are not what is in question, the image's copy of
fedmq is. Then the image's commands start and every module imports from that copy.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.image import copied_sources, installed_packages, stage

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = installed_packages((ROOT / "pyproject.toml").read_text())


def test_the_dockerfile_copies_every_package_the_project_installs() -> None:
    copied = {src for src in copied_sources((ROOT / "Dockerfile").read_text())}
    directories = {src for src in copied if (ROOT / src).is_dir()}

    assert directories == PACKAGES, (
        f"missing from the Dockerfile: {sorted(PACKAGES - directories)}; "
        f"copied but not installed: {sorted(directories - PACKAGES)}"
    )
    assert "pyproject.toml" in copied


@pytest.fixture(scope="module")
def image_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment holding the staged image tree, installed (not editable)."""
    base = tmp_path_factory.mktemp("image")
    stage(ROOT, base / "src")
    assert (base / "src" / "pyproject.toml").exists()
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = run(venv, "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    borrowed = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    pth = Path(site.stdout.strip()) / "borrowed-libraries.pth"
    pth.write_text("\n".join(sorted(borrowed)) + "\n")
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps"]
        + ["--no-build-isolation", "--no-index", "--ignore-installed", str(base / "src")],
        capture_output=True, text=True, timeout=300, cwd=base, env=clean_env(),
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    yield venv


def clean_env() -> dict[str, str]:
    """This environment without anything that would put the repository on the import path."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def run(venv: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        capture_output=True, text=True, timeout=120, cwd=venv, env=clean_env(),
    )  # fmt: skip


def modules_of(package_root: Path) -> Iterator[str]:
    for path in sorted(package_root.rglob("*.py")):
        parts = path.relative_to(package_root.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue  # these run a command when imported; the --help runs below start them
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize(
    "argv",
    [
        ("fedmq", "aggregator", "--help"),
        ("fedmq", "worker", "--help"),
        ("python", "-m", "aggregator", "--help"),
        ("python", "-m", "worker", "--help"),
    ],
)
def test_the_image_commands_start(image_env: Path, argv: tuple[str, ...]) -> None:
    result = run(image_env, *argv)

    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_image_leaves_out_only_the_torch_extra() -> None:
    install = re.search(r'pip install "\.\[([a-z,]*)\]"', (ROOT / "Dockerfile").read_text())

    assert install is not None and "torch" not in install.group(1).split(",")


def test_every_module_imports_from_the_image_copy(image_env: Path) -> None:
    # torchtrain needs the torch extra, which the image leaves out (several GB); it is copied
    # (a derived image installs `.[torch]`) but cannot be imported there, so it is not tried.
    packages = sorted(PACKAGES - {"torchtrain"})
    modules = [m for package in packages for m in modules_of(ROOT / package)]
    code = (
        "import importlib, json, sys\n"
        "where = {m: importlib.import_module(m).__file__ for m in sys.argv[1:]}\n"
        "print(json.dumps(where))\n"
    )

    result = run(image_env, "python", "-c", code, *modules)

    assert result.returncode == 0, result.stderr
    assert len(modules) > 50
    where = json.loads(result.stdout)
    outside = [m for m, file in where.items() if not Path(file).is_relative_to(image_env)]
    assert outside == [], "imported from outside the image's copy"
