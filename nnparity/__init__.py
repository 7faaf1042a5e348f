"""nnparity: a reference NumPy backpropagation and parity checks against PyTorch and TensorFlow.

The Python API (:mod:`nnparity.api`): :func:`check_model`, :func:`check_port` and
:func:`verify_file` return a :class:`Report`; the pytest plugin (:mod:`nnparity.pytest_plugin`)
gives tests the ``parity`` fixture. Every network is a spec that builds a layer list
(:class:`MLPSpec`, :class:`CNNSpec`, or :class:`NetSpec` for any list): :func:`gradients` and
:func:`init_params` take each.
"""

from nnparity.api import Divergence, Report, check_model, check_port, verify_file
from nnparity.errors import InputError, ModelError
from nnparity.parity.report import Diagnosis
from nnparity.reference import CNNSpec, MLPSpec, NetSpec, Optimizer, gradients, init_params

__version__ = "0.1.0"
__all__ = ["CNNSpec", "Diagnosis", "Divergence", "InputError", "MLPSpec", "ModelError",
           "NetSpec", "Optimizer", "Report", "__version__", "check_model", "check_port",
           "gradients", "init_params", "verify_file"]
