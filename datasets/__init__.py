"""Datasets: IDX files (MNIST, Fashion-MNIST) with checksums and sources, and embedded sets.

Imports NumPy only. Real image sets stay uint8 on disk or memory-mapped; convert per batch.
"""

from .cache import ChecksumError, cache_root, verify_file
from .catalog import DATASETS, Dataset, FileSpec, get_dataset
from .idx import DataError, IdxError, read_idx, to_float, write_idx
from .iris import load_iris
from .load import class_names, dataset_paths, load_fashion_mnist, load_idx_dataset, load_mnist
from .named import EMBEDDED, load_embedded
from .sources import DatasetMissing, SourceError, fetch, locate
from .split import Split
from .toy import diamond, linear_regression, logic_gate

__all__ = [
    "DATASETS",
    "EMBEDDED",
    "ChecksumError",
    "DataError",
    "Dataset",
    "DatasetMissing",
    "FileSpec",
    "IdxError",
    "SourceError",
    "Split",
    "cache_root",
    "class_names",
    "dataset_paths",
    "diamond",
    "fetch",
    "get_dataset",
    "linear_regression",
    "load_embedded",
    "load_fashion_mnist",
    "load_idx_dataset",
    "load_iris",
    "load_mnist",
    "locate",
    "logic_gate",
    "read_idx",
    "to_float",
    "verify_file",
    "write_idx",
]
