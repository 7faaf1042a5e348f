"""A backend with a planted bug, for ``nnparity fuzz``'s tests only: the reference with tanh's
derivative wrong (the weight gradient of every layer a tanh follows scaled by 1.5).

Registered as ``planted`` in the test process by :func:`register`, and in a Dask worker's
process by ``dask worker --preload <this file>`` (:func:`dask_setup`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnparity.backends import registry
from nnparity.backends.numpy_backend import NumpyBackend
from nnparity.reference.results import Gradients

NAME = "planted"


class TanhBugBackend(NumpyBackend):
    """The reference with a wrong weight gradient under every tanh."""

    name = NAME

    def gradients(self, spec: Any, params: Any, x: np.ndarray, y: np.ndarray,
                  **kwargs: Any) -> Gradients:
        result = super().gradients(spec, params, x, y, **kwargs)
        for layer in spec.net:  # a tanh after a layer with a weight (not a batchnorm)
            if layer.kind == "tanh" and f"{layer.name}.W" in result.grads:
                result.grads[f"{layer.name}.W"] = result.grads[f"{layer.name}.W"] * 1.5
        return result


def register(setitem: Any = dict.__setitem__, setattr_: Any = setattr) -> None:
    """Add ``planted`` to the registry (through a ``monkeypatch``'s ``setitem``/``setattr`` in a
    test, so that it is undone after it)."""
    setitem(registry.MODULES, NAME, ("tests.planted", None, ()))
    setattr_(registry, "NAMES", (*registry.NAMES, NAME))
    setitem(registry._loaded, NAME, TanhBugBackend())


def dask_setup(worker: Any) -> None:
    """Dask's preload hook: register the backend in the worker's process."""
    register()
