"""The test problem fed to the learner's code, the reference and the backends, and their results.

The batch is built to expose the classic bugs, not only to be random:
- input row 0 is the unit vector ``e_1`` and half of layer 1's biases are ``-W1[0, j]``, so
  ``z1[0, j] = W1[0, j] - W1[0, j]`` is exactly 0 (a relu derivative taken as 1 at 0 shows up
  there, and through ``x.T @ delta`` in ``dW1`` too); input row 1 is all zeros, so without biases
  ``z1[1]`` is exactly 0 as well;
- every bias is non-zero elsewhere (``b - lr * b`` instead of ``b - lr * db`` shows up);
- for softmax cross-entropy in float64 the output biases carry a common offset of
  :data:`LOGIT_SHIFT` (softmax is shift-invariant, so the math does not change), which makes
  ``exp(o)`` overflow in a softmax computed without subtracting the row maximum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnparity.backends.compare import Tensors, collect
from nnparity.backends.protocol import Backend
from nnparity.reference import mlp
from nnparity.reference.family import init_params
from nnparity.reference.optim import Optimizer
from nnparity.reference.optim import step as optimizer_step
from nnparity.reference.results import Trace
from nnparity.reference.spec import MLPSpec

from .layout import STEP_LABEL

# exp() overflows above log(max float64) = 709.78; float32 would lose the tolerance at this scale.
LOGIT_SHIFT = {"float64": 1000.0, "float32": 0.0}
DEFAULT_BATCH = 5
DEFAULT_LR = 0.1


@dataclass
class Problem:
    """Identical inputs for everyone: canonical params, a batch and its labels, the step size.

    ``y`` is what the reference takes: class indices for ``ce``, dense targets otherwise.
    """

    spec: MLPSpec
    params: dict[str, np.ndarray]
    x: np.ndarray
    y: np.ndarray
    lr: float = DEFAULT_LR

    @property
    def n(self) -> int:
        """Batch size."""
        return int(self.x.shape[0])


def make_problem(spec: MLPSpec, seed: int = 0, batch: int = DEFAULT_BATCH,
                 lr: float = DEFAULT_LR) -> Problem:
    """The seeded problem described in the module docstring."""
    if batch < 2:
        raise ValueError(f"--batch must be at least 2 (sum and mean must differ), got {batch}")
    rng = np.random.default_rng([seed, 6])
    params = init_params(spec, "xavier", seed)
    x = rng.standard_normal((batch, spec.input_dim)).astype(spec.dtype)
    x[0], x[1] = 0.0, 0.0
    x[0, 0] = 1.0
    if spec.bias:
        for i in range(1, spec.depth + 1):
            shape = (1, spec.widths[i])
            b = rng.uniform(0.1, 0.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
            if i == 1:
                half = (spec.widths[1] + 1) // 2
                b[0, :half] = -params["W1"][0, :half]
            if i == spec.depth and spec.loss == "ce":
                b = b + LOGIT_SHIFT[spec.dtype]
            params[f"b{i}"] = b.astype(spec.dtype)
    classes = rng.permutation(np.resize(np.arange(max(spec.output_dim, 2)), batch))
    if spec.loss == "ce":
        y = classes.astype(np.int64)
    elif spec.loss == "bce":
        y = (classes % 2).astype(spec.dtype)
    else:
        y = np.eye(spec.output_dim, dtype=spec.dtype)[classes % spec.output_dim]
    return Problem(spec, params, x, y, lr)


def updated(problem: Problem, grads: dict[str, np.ndarray], variant: str = "torch") \
        -> dict[str, np.ndarray]:
    """One plain SGD step ``p - lr * g`` with the reference optimiser (a framework's variant)."""
    optimizer = Optimizer("sgd", lr=problem.lr, variant=variant)
    new, _ = optimizer_step(optimizer, problem.params, grads, {})
    return new


def reference_tensors(
    problem: Problem,
    backward_spec: MLPSpec | None = None,
    backward_trace: Callable[[Trace], Trace] | None = None,
    variant: str = "torch",
) -> Tensors:
    """Forward, loss, deltas, gradients and the SGD update of the reference, in compare order.

    ``backward_spec`` and ``backward_trace`` replace the spec and the forward trace seen by the
    backward pass only: that is how :mod:`nnparity.verify.diagnose` builds a bug on purpose.
    ``variant`` is the optimiser formulation of a framework (Keras rounds lr to float32).
    """
    trace = mlp.forward(problem.spec, problem.params, problem.x)
    seen = backward_trace(trace) if backward_trace else trace
    grads = mlp.backward(backward_spec or problem.spec, problem.params, problem.x, seen,
                         problem.y)
    return collect(trace, grads, [(STEP_LABEL, updated(problem, grads.grads, variant))])


def variant_of(backend: Backend) -> str:
    """The optimiser formulation a backend implements (``torch`` or ``keras``)."""
    return str(getattr(backend, "optimizer_variant", "torch"))


def backend_tensors(backend: Backend, problem: Problem) -> Tensors:
    """The same tensors from a registered backend (forward, gradients, one SGD step)."""
    spec, params, x, y = problem.spec, problem.params, problem.x, problem.y
    trace = backend.forward(spec, params, x)
    grads = backend.gradients(spec, params, x, y)
    optimizer = Optimizer("sgd", lr=problem.lr, variant=variant_of(backend))
    new, _, _ = backend.step(spec, params, None, x, y, optimizer)
    return collect(trace, grads, [(STEP_LABEL, new)])
