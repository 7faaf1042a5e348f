"""How the page runs :mod:`.jax_blocks` on its fixed example: the measuring harness.

JAX's layout is the reference's and its functions take NumPy arrays, so :func:`run` only calls
the block function and returns its outputs as NumPy arrays; every call runs inside
:func:`context` (``jax.enable_x64(True)``, thread-local), so importing this changes no global
setting. The page shows this code only in a fold.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import jax
import numpy as np

from . import jax_blocks as BLOCKS


def context() -> AbstractContextManager:
    """What every call runs inside: x64 on (float64 stays float64), for this thread only."""
    return jax.enable_x64(True)


def feeder(function: str) -> Any:
    """The harness function that feeds ``BLOCKS.<function>``: :func:`run` itself."""
    return run


def run(function: str, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """``BLOCKS.<function>(**inputs)`` (canonical NumPy in), its outputs as NumPy arrays."""
    outputs = getattr(BLOCKS, function)(**inputs)
    return {name: np.asarray(value) for name, value in outputs.items()}
