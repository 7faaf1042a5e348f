"""The canonical NumPy implementation (imports NumPy only)."""

from .activations import ACTIVATIONS, get_activation
from .cnn_spec import CNNSpec, ConvBlock
from .family import FAMILIES, Family, Spec, family_of, init_params, spec_from_dict
from .init import SCHEMES
from .netspec import NetSpec
from .network import backward, check_params, forward, gradients, loss, predict
from .optim import Optimizer, init_state, step
from .results import Gradients, Trace
from .spec import MLPSpec

__all__ = [
    "ACTIVATIONS",
    "FAMILIES",
    "SCHEMES",
    "CNNSpec",
    "ConvBlock",
    "Family",
    "Gradients",
    "MLPSpec",
    "NetSpec",
    "Optimizer",
    "Spec",
    "Trace",
    "backward",
    "check_params",
    "family_of",
    "forward",
    "get_activation",
    "gradients",
    "init_params",
    "init_state",
    "loss",
    "predict",
    "spec_from_dict",
    "step",
]
