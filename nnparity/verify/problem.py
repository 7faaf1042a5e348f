"""The test problem fed to the learner's code, the reference and the backends, and their results.

Two batches: the *generic* one (``edges=False``: random inputs and non-zero biases, no
pre-activation at a kink, no offset; the math verdict) and the *edge-case* one (``edges=True``,
the golden vectors' batch too), built to expose the classic bugs, not only to be random:
- input row 0 is the unit vector ``e_1`` (an image: one pixel of one channel set) and, when
  layer 1 is dense, half of its biases are ``-W1[0, j]``, so ``z1[0, j] = W1[0, j] - W1[0, j]``
  is exactly 0 (a relu derivative taken as 1 at 0 shows up there, and through
  ``x.T @ delta`` in ``dW1`` too); input row 1 is all zeros, so without biases ``z1[1]`` is
  exactly 0 as well;
- every bias is non-zero elsewhere (``b - lr * b`` instead of ``b - lr * db`` shows up);
- for softmax cross-entropy in float64 the output biases carry a common offset of
  :data:`LOGIT_SHIFT` (softmax is shift-invariant, so the math does not change), which makes
  ``exp(o)`` overflow in a softmax computed without subtracting the row maximum.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from nnparity.backends.compare import Tensors, collect
from nnparity.backends.protocol import Backend, Params
from nnparity.errors import InputError
from nnparity.memory import check_memory, estimate_bytes
from nnparity.parity.judge import run
from nnparity.parity.mistaken import NO_MISTAKE, Mistake, MistakenReference
from nnparity.reference.family import Spec, init_params
from nnparity.reference.optim import Optimizer

from .dropout_masks import with_masks
from .netview import param_layers
from .norms import start_values

# exp() overflows above log(max float64) = 709.78; float32 would lose the tolerance at this scale.
LOGIT_SHIFT = {"float64": 1000.0, "float32": 0.0}
DEFAULT_BATCH = 5
DEFAULT_LR = 0.1
PROCESSES = 3  # the learner's run; in verify, the reference's run and the learner's results


@dataclass
class Problem:
    """Identical inputs for everyone: canonical params, a batch and its labels, the step size.

    ``y`` is what the reference takes: class indices for ``ce``, dense targets otherwise.
    """

    spec: Spec
    params: dict[str, np.ndarray]
    x: np.ndarray
    y: np.ndarray
    lr: float = DEFAULT_LR
    optimizer: Optimizer | None = None
    steps: int = 1

    def update_rule(self, variant: str | None = None) -> Optimizer:
        """The optimiser of each step (the declared one, else plain SGD at ``lr``), in
        ``variant``'s formulation when given (a backend implements its own only)."""
        rule = self.optimizer or Optimizer("sgd", lr=self.lr)
        return rule if variant in (None, rule.variant) else replace(rule, variant=variant)

    @property
    def n(self) -> int:
        """Batch size."""
        return int(self.x.shape[0])


def make_problem(spec: Spec, seed: int = 0, batch: int = DEFAULT_BATCH,
                 lr: float = DEFAULT_LR, edges: bool = True) -> Problem:
    """The seeded problem described in the module docstring: the edge-case batch, or with
    ``edges=False`` the generic one (same weights, no exact zeros, no logit offset). Weights
    are drawn by the spec's default scheme (``xavier`` for an MLP and a layer list); a network
    with dropout gets its masks (:func:`nnparity.verify.dropout_masks.with_masks`)."""
    if batch < 2:
        raise ValueError(f"--batch must be at least 2 (sum and mean must differ), got {batch}")
    rng = np.random.default_rng([seed, 6])
    params = init_params(spec, seed=seed)
    x = rng.standard_normal((batch, *spec.input_shape)).astype(spec.dtype)
    if edges:
        x[0], x[1] = 0.0, 0.0
        x[0].flat[0] = 1.0
    layers = param_layers(spec)
    for layer in layers:
        if layer.bias is None:
            continue
        shape = (1, int(np.prod(params[layer.bias].shape)))
        b = rng.uniform(0.1, 0.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        if layer.index == 1 and layer.kind == "dense" and edges:
            half = (shape[1] + 1) // 2
            b[0, :half] = -params[layer.weight][0, :half]
        if layer.index == len(layers) and spec.loss == "ce" and edges:
            b = b + LOGIT_SHIFT[spec.dtype]
        params[layer.bias] = b.reshape(params[layer.bias].shape).astype(spec.dtype)
    start_values(spec, params, rng)
    classes = rng.permutation(np.resize(np.arange(max(spec.output_dim, 2)), batch))
    if spec.loss == "ce":
        y = classes.astype(np.int64)
    elif spec.loss == "bce":
        y = (classes % 2).astype(spec.dtype)
    else:
        y = np.eye(spec.output_dim, dtype=spec.dtype)[classes % spec.output_dim]
    return Problem(with_masks(spec, seed, batch), params, x, y, lr)


def reference_tensors(problem: Problem, mistake: Mistake = NO_MISTAKE,
                      optimizer: Optimizer | None = None) -> Tensors:
    """Forward, loss, deltas and gradients of the reference on the problem's parameters, then
    the parameters after each of ``problem.steps`` updates on the same batch, in compare order:
    the one judge's run (:func:`nnparity.parity.judge.run`) of the reference backend with
    ``mistake`` built in (:class:`nnparity.parity.mistaken.Mistake`: how
    :mod:`nnparity.verify.mistakes` builds a mistake on purpose), ``optimizer`` the update rule
    (default the problem's; a framework's formulation). Every pass is a training pass on the
    spec's own dropout masks: a network with batchnorm runs on the batch's statistics, and the
    running statistics it leaves are part of each step's parameters (``step1.<bn>.mean``,
    ``.var``), after the trained ones; the steps' losses are left out."""
    spec, steps = problem.spec, problem.steps
    reference = MistakenReference(mistake, own_masks=True)
    result = run(reference, spec, problem.params, [(problem.x, problem.y)] * steps,
                 optimizer or problem.update_rule(), keep=range(1, steps + 1), state=False)
    return collect(result.trace, result.gradients,
                   [(label, _trained_first(spec, stepped)) for label, stepped in result.updates])


def _trained_first(spec: Spec, stepped: Params) -> Params:
    """A step's parameters, the trained ones first, then the state (its loss left out)."""
    del stepped["loss"]
    return dict(sorted(stepped.items(), key=lambda item: spec.is_state(item[0])))


def backend_tensors(backend: Backend, problem: Problem, rule: Optimizer) -> Tensors:
    """The same tensors from a registered backend: the one judge's run
    (:func:`nnparity.parity.judge.run`) on the problem's batch, ``rule``'s steps on it again
    and again, the parameters after each (and each step's loss, which the reference's tensors
    leave out: not compared)."""
    steps = problem.steps
    return run(backend, problem.spec, problem.params, [(problem.x, problem.y)] * steps, rule,
               keep=range(1, steps + 1), state=False).tensors


def check_batch(spec: Spec, batch: int, optimizer: str = "sgd", force: bool = False) -> int:
    """The bytes the learner's process needs for ``batch`` rows (the shared estimator of
    :mod:`nnparity.memory`), after checking that it and this process's own copies (the
    reference's tensors, the learner's results) fit in the memory available: exit 2 if not
    (``force``: no check)."""
    if batch < 2:
        raise InputError(f"--batch must be at least 2 (sum and mean must differ), got {batch}")
    data = batch * (int(np.prod(spec.input_shape)) + spec.output_dim) \
        * np.dtype(spec.dtype).itemsize
    learner = estimate_bytes(spec, batch, optimizer=optimizer, data_bytes=data)
    check_memory(PROCESSES * learner, f"--batch {batch} (your code and verify together)",
                 "lower --batch", force)
    return learner
