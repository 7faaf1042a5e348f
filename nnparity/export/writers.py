"""The export writers by framework, and the optimiser formulation each framework implements."""

from __future__ import annotations

from collections.abc import Callable

from . import jax_file, keras_file, numpy_file, torch_file
from .graph import Network

WRITERS: dict[str, Callable[[Network], str]] = {
    "torch": torch_file.write, "keras": keras_file.write, "jax": jax_file.write,
    "numpy": numpy_file.write,
}
# The optimiser variant written into each file (reference/optim.py): JAX and NumPy files use the
# torch formulas, as optax does.
VARIANTS = {"torch": "torch", "keras": "keras", "jax": "torch", "numpy": "torch"}
OPTIMIZERS = ("sgd", "momentum", "adam")  # what every writer renders (not adamw)
