"""The canonical NumPy implementation (imports NumPy only)."""

from .activations import ACTIVATIONS, get_activation
from .cnn_spec import CNNSpec, ConvBlock
from .init import SCHEMES, init_params
from .mlp import backward, check_params, forward, gradients, loss, predict
from .optim import Optimizer, init_state, step
from .results import Gradients, Trace
from .spec import MLPSpec

__all__ = [
    "ACTIVATIONS",
    "SCHEMES",
    "CNNSpec",
    "ConvBlock",
    "Gradients",
    "MLPSpec",
    "Optimizer",
    "Trace",
    "backward",
    "check_params",
    "forward",
    "get_activation",
    "gradients",
    "init_params",
    "init_state",
    "loss",
    "predict",
    "step",
]
