"""A train/test split of arrays, drawn with a seeded permutation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Split:
    """``x_* [N, ...]`` inputs, ``y_* [N]`` class indices (or ``[N, K]`` targets), class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str] = field(default_factory=list)
    note: str = ""


def random_split(
    x: np.ndarray, y: np.ndarray, n_train: int, seed: int, classes: list[str] | None = None
) -> Split:
    """The first ``n_train`` rows of ``default_rng(seed).permutation(N)`` train, the rest test
    (at least one row each)."""
    n = len(x)
    if not 0 < n_train < n:
        raise ValueError(f"--n-train {n_train} must be between 1 and {n - 1}: the set has {n} "
                         "rows and the rest are the test rows")
    order = np.random.default_rng(seed).permutation(n)
    train, test = order[:n_train], order[n_train:]
    return Split(x[train], y[train], x[test], y[test], classes or [])
