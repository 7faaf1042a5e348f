"""The iris table (Fisher 1936, 150 rows), bundled as ``data/iris.csv``.

The bundled copy is scikit-learn's, which follows Fisher's paper (the UCI file differs in two
entries of rows 35 and 38). Columns: sepal length, sepal width, petal length, petal width (cm);
label 0 setosa, 1 versicolor, 2 virginica.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from .split import Split, random_split

CLASSES = ["setosa", "versicolor", "virginica"]


def iris_table() -> tuple[np.ndarray, np.ndarray]:
    """All 150 rows: features ``[150, 4]`` float64 and labels ``[150]`` int64."""
    text = resources.files("nnparity.datasets").joinpath("data/iris.csv").read_text()
    table = np.loadtxt(text.splitlines(), delimiter=",", skiprows=1)
    return table[:, :4], table[:, 4].astype(np.int64)


def load_iris(n_train: int = 100, seed: int = 0) -> Split:
    """The BP lecture's set-up: ``n_train`` rows drawn at random for training, the rest for
    testing."""
    x, y = iris_table()
    return random_split(x, y, n_train, seed, CLASSES)
