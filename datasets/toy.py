"""Small generated sets from the seeds, all deterministic for a seed.

- logic gates (the NumPy basics lecture and the NumPy blog): the four rows of {0,1}^2 (two rows
  of {0,1} for NOT) and the truth table as labels ``[N]`` int64;
- the seed-001 "diamond": ``x`` uniform in ``[-1, 1]^2`` plus a constant-1 column, label
  ``|x1| + |x2| < 1``;
- the seed-001 linear-regression set: ``y = 1.5 + 2 x1 + 5 x2 + N(0, 0.5^2)``, ``x`` in
  ``[0, 10]^2``, targets ``[N, 1]`` float64.
"""

from __future__ import annotations

import numpy as np

from .split import Split, random_split

GATES = {
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "nand": lambda a, b: 1 - (a & b),
    "nor": lambda a, b: 1 - (a | b),
    "xor": lambda a, b: a ^ b,
}
LINEAR_TRUTH = (1.5, 2.0, 5.0)


def logic_gate(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Truth table of and/or/nand/nor/xor/not: ``x [4, 2]`` (not: ``[2, 1]``), ``y [N]``."""
    name = name.lower()
    if name == "not":
        return np.array([[0.0], [1.0]]), np.array([1, 0])
    if name not in GATES:
        raise ValueError(f"unknown gate {name!r}; known: {', '.join([*GATES, 'not'])}")
    a = np.array([0, 0, 1, 1])
    b = np.array([0, 1, 0, 1])
    return np.stack([a, b], axis=1).astype(np.float64), GATES[name](a, b).astype(np.int64)


def gate_split(name: str) -> Split:
    """A gate's truth table as both training and test set (there is nothing else to test on)."""
    x, y = logic_gate(name)
    return Split(x, y, x.copy(), y.copy(), ["0", "1"], note="test set = training set")


def diamond(n: int = 500, seed: int = 0, n_train: int | None = None) -> Split:
    """The NumPy basics lecture's diamond: ``x [n, 3]`` (x1, x2, 1), label
    ``|x1| + |x2| < 1``; 80 % train."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-1, 1, size=(n, 2))
    x = np.concatenate([xy, np.ones((n, 1))], axis=1)
    y = (np.abs(xy[:, 0]) + np.abs(xy[:, 1]) < 1).astype(np.int64)
    return random_split(x, y, n_train or int(0.8 * n), seed, ["outside", "inside"])


def linear_regression(n: int = 100, seed: int = 0) -> Split:
    """The NumPy basics lecture's regression set: ``x [n, 2]`` in ``[0, 10]^2``, ``y [n, 1]``;
    80 % train."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=(n, 2))
    b, t1, t2 = LINEAR_TRUTH
    y = (b + t1 * x[:, 0] + t2 * x[:, 1] + rng.normal(0, 0.5, n)).reshape(n, 1)
    return random_split(x, y, int(0.8 * n), seed)
