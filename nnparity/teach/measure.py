"""Parity of each framework's block against the reference, measured while the page is generated.

For every block and dtype (float64, float32) the framework function runs on the block's fixed
example and each output tensor is compared with the reference's by
:func:`nnparity.backends.compare.compare_tensor` (max abs and max rel error, the MLP tolerance of
the tolerance table; the CNN's for convolution and pooling blocks).
"""

from __future__ import annotations

import importlib
import importlib.util
from contextlib import nullcontext
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from nnparity.backends.compare import Comparison, compare_tensor, tolerance

from .sections import Block

DTYPES = ("float64", "float32")
CNN_BLOCKS = ("conv-same-stride2", "conv-valid", "maxpool", "avgpool", "global-avgpool",
              "flatten")


@dataclass(frozen=True)
class Framework:
    """A column of the page: ``key``, display ``title``, the harness module that runs its block
    functions (``feed.BLOCKS`` is the module the page shows), the package that must be
    importable for it and the distribution whose version is shown."""

    key: str
    title: str
    module: str
    requires: str
    distribution: str


FRAMEWORKS = (
    Framework("torch", "PyTorch", "nnparity.teach.torch_feed", "torch", "torch"),
    Framework("keras", "Keras", "nnparity.teach.keras_feed", "tensorflow", "keras"),
    Framework("jax", "JAX", "nnparity.teach.jax_feed", "jax", "jax"),
)


def load(framework: Framework) -> ModuleType | str:
    """The framework's harness module, or the reason it cannot be used (``not installed``)."""
    if importlib.util.find_spec(framework.requires) is None:
        return f"{framework.requires} is not installed"
    try:
        return importlib.import_module(framework.module)
    except ImportError as exc:
        return f"{framework.requires} cannot be imported: {exc}"


def call(module: ModuleType, function: str, **inputs: Any) -> dict[str, np.ndarray]:
    """The block function ``function`` run by the harness ``module`` on ``inputs`` inside the
    harness's ``context()`` (JAX: x64 on), its outputs as NumPy arrays."""
    with getattr(module, "context", nullcontext)():
        return {name: np.asarray(value) for name, value in module.run(function, inputs).items()}


@dataclass(frozen=True)
class Measurement:
    """One framework, one dtype, one block: every compared tensor (empty when not run)."""

    dtype: str
    comparisons: tuple[Comparison, ...]

    @property
    def worst(self) -> Comparison:
        """The comparison with the largest relative error."""
        return max(self.comparisons, key=lambda c: c.max_rel)


def measure(block: Block, module: ModuleType, dtype: str) -> Measurement:
    """Run ``module``'s function for ``block`` on the example in ``dtype``; compare each output
    it returns with the reference's (outputs the framework does not expose are not compared)."""
    inputs = block.inputs(dtype)
    expected = block.reference(block.inputs(dtype))  # its own copy: nothing shared, nothing mutated
    actual = call(module, block.function, **inputs)
    tol = tolerance(dtype, ("conv",) if block.key in CNN_BLOCKS else ("dense",))
    comparisons = tuple(
        compare_tensor("block", name, actual[name].reshape(np.shape(value)), value, tol)
        for name, value in expected.items() if name in actual)  # in the reference's order
    return Measurement(dtype, comparisons)
