"""Datasets by name, as used by ``nnparity train``: the embedded sets."""

from __future__ import annotations

from .iris import load_iris
from .split import Split
from .toy import GATES, diamond, gate_split, linear_regression

EMBEDDED = ("iris", "diamond", "linreg", *GATES, "not")


def load_embedded(name: str, seed: int = 0, n_train: int | None = None) -> Split:
    """An embedded set by name: ``iris`` (``n_train`` rows, default 100), a logic gate,
    ``diamond`` or ``linreg``; deterministic for ``seed``."""
    if name == "iris":
        return load_iris(n_train or 100, seed)
    if name == "diamond":
        return diamond(seed=seed, n_train=n_train)
    if name == "linreg":
        return linear_regression(seed=seed)
    if name in GATES or name == "not":
        return gate_split(name)
    raise ValueError(f"unknown dataset {name!r}; embedded: {', '.join(EMBEDDED)}")
