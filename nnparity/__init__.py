"""nnparity: a reference NumPy backpropagation and parity checks against PyTorch and TensorFlow."""

from nnparity.reference import MLPSpec, Optimizer, gradients, init_params

__version__ = "0.1.0"
__all__ = ["MLPSpec", "Optimizer", "__version__", "gradients", "init_params"]
