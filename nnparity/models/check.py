"""Checking a user's model against the reference: forward, loss, deltas, gradients, and
:data:`STEPS` steps of the user's optimiser, on seeded batches.

The user's model (:class:`UserModel`: :mod:`.torch_model`, :mod:`.keras_model` or
:mod:`.flax_model`) runs; its
parameters, copied into the canonical layout, start the reference. Each step gives the
reference the dropout mask the user's model drew; with dropout, the output at evaluation (no
mask) is compared too (``forward eval.output``). Tensors are judged at the tolerance of the
model's dtype and family (``backends/compare.py``); the first failure is diagnosed where a classic
port bug explains it (:mod:`.diagnose`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nnparity.backends import registry
from nnparity.backends.compare import Tensors, collect, compare_tensor, tolerance_for
from nnparity.backends.precision import check_device, tensorflow_device
from nnparity.backends.protocol import Backend
from nnparity.errors import InputError, NnparityError
from nnparity.parity.cases import make_batch
from nnparity.parity.judge import Run, judge, lockstep, mask_kwargs, run
from nnparity.parity.report import CaseResult
from nnparity.parity.rounding_judge import CANCELLING
from nnparity.parity.rounding_judge import NOTE as ROUNDING_NOTE
from nnparity.reference import network
from nnparity.reference.family import Spec
from nnparity.reference.optim import Optimizer
from nnparity.reference.results import Gradients, Trace

from .diagnose import diagnose
from .source import ModelSource

STEPS = 3
BATCH = 4


class UserModel(Protocol):
    """A user's model made checkable: its mapped ``spec``, its optimiser's reference
    counterpart (``None`` without one), and runs on NumPy batches in the canonical layout."""

    backend: str
    source: ModelSource
    spec: Spec
    optimizer: Optimizer | None

    def params(self) -> dict[str, np.ndarray]:
        """Current parameters, canonical layout."""

    def run(self, x: np.ndarray, y: np.ndarray,
            training: bool = True) -> tuple[Trace, Gradients, np.ndarray | None]:
        """Forward and backward of one batch, and the dropout mask drawn (canonical; none and
        no dropout with ``training=False``)."""

    def step(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray | None]:
        """One optimiser step: loss before it, the dropout mask drawn."""

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        """Set the parameters from the canonical layout."""


def adapt(source: ModelSource, dtype: str | None = None,
          weights: dict[str, np.ndarray] | Path | None = None, device: str = "cpu") -> UserModel:
    """The framework adapter for ``source``: ``weights`` (a state_dict / Keras weights by
    variable path, or a Keras ``.weights.h5``: :mod:`.native_weights`) loaded first, then
    ``dtype`` conversion (torch only) and ``device`` (torch's CUDA device, or TensorFlow's
    first GPU: refused with the reason where there is none)."""
    if source.framework == "flax":
        if device != "cpu" or dtype is not None or weights is not None:
            raise InputError(f"{source.label}: a Flax model is checked on the CPU with its own "
                             "weights and dtype")
        from .flax_model import FlaxUserModel

        return FlaxUserModel(source)
    try:
        if source.framework == "torch":
            check_device("torch", device)
        else:
            tf_device = tensorflow_device(device)
    except ValueError as exc:
        raise InputError(f"{source.label}: {exc}") from None
    if source.framework == "torch":
        from .torch_model import TorchUserModel

        if isinstance(weights, Path):
            raise InputError(f"{source.label}: --weights {weights}: a torch model's weights are "
                             "a state_dict as .safetensors or .npz")
        return TorchUserModel(source, dtype, weights, device)
    if dtype is not None:
        raise InputError(f"{source.label}: --dtype applies to torch models only; build the "
                         "Keras model in the dtype to check")
    from .keras_model import KerasUserModel

    return KerasUserModel(source, weights, tf_device)


def batches(spec: Spec, seed: int, count: int) -> list[tuple[np.ndarray, Any]]:
    """``count`` batches of :data:`BATCH` rows fitting ``spec`` (as the parity cases'), drawn
    from ``seed`` and the spec's shapes only: never from how the model's path is spelled."""
    rng = np.random.default_rng(seed)
    return [make_batch(spec, "", BATCH, rng) for _ in range(count)]


def setup(model: UserModel) -> str:
    """One line: the loss and optimiser the check uses and where each came from."""
    spec, opt, origins = model.spec, model.optimizer, model.source.origins
    line = f"loss {spec.loss} ({spec.reduction}) from {origins.get('loss', 'the builder')}; "
    if opt is None:
        return line + "no optimiser: updates not checked"
    return (line + f"optimiser {opt.variant} {opt.name} (lr {opt.lr:g}) from "
            f"{origins.get('optimizer', 'the builder')}")


def check(model: UserModel, label: str, *, seed: int = 0, steps: int = STEPS) -> CaseResult:
    """The case ``label`` for ``model``: every tensor against the reference. Anything the
    user's code raises is an :class:`InputError` naming the file (:mod:`.guard`); another
    exception while checking fails the case with it (as a backend's does in the matrix)."""
    spec = model.spec
    result = CaseResult(label, model.backend, spec=spec.to_dict())
    result.notes.append(setup(model))
    result.notes += getattr(model, "notes", [])  # what an adapter changed to check the model
    started = time.perf_counter()
    try:
        _compare(model, label, seed, steps, result)
    except NnparityError:
        raise
    except Exception as exc:  # e.g. a tensor the model gave that cannot be converted
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started
    return result


def _compare(model: UserModel, label: str, seed: int, steps: int, result: CaseResult) -> None:
    spec = model.spec
    reference = registry.get("numpy")
    data = batches(spec, seed, max(steps, 1))
    params = model.params()
    x, y = data[0]
    trace, grads, mask = model.run(x, y)
    stateful = any(spec.is_state(name) for name in params)
    if stateful:  # that training pass moved the running statistics: back to where they were
        model.load_params(params)
    tol = tolerance_for(spec)
    # with dropout or batch normalisation, evaluation too: no mask, no scaling, the running
    # statistics (before the steps change the weights)
    at_eval = None if mask is None and not stateful else compare_tensor(
        "forward", "eval.output", model.run(x, y, training=False)[0].output,
        reference.forward(spec, params, x).output, tol)
    step_masks: list[np.ndarray | None] = []
    actual_updates = []
    if model.optimizer is not None:
        def model_step(xb: np.ndarray, yb: np.ndarray) -> float:
            loss, step_mask = model.step(xb, yb)
            step_masks.append(step_mask)
            return loss

        actual_updates = lockstep(model_step, model.params, data[:steps])
    def reference_run(backend: Backend) -> Run:  # the reference (or a nudged one) so
        return run(backend, spec, params, data, model.optimizer, steps=steps,
                   dropout_mask=mask, step_masks=step_masks, keep=range(1, steps + 1),
                   state=False)

    def rerun(backend: Backend) -> Tensors:  # what the judges and the diagnoses re-run
        return reference_run(backend).tensors

    expected = reference_run(reference)
    # the model's trace is a training pass (batch normalisation on the batch's statistics)
    expected.trace = network.forward(spec, params, x, training=True, **mask_kwargs(mask))
    actual = collect(trace, grads, actual_updates)
    judged = judge(spec, params, (x, y), mask, actual, expected.tensors, model.optimizer, tol,
                   rerun)
    result.comparisons, kinks = judged.comparisons, judged.kinks
    if at_eval is not None:
        result.comparisons.append(at_eval)
    if kinks:
        result.notes.append(f"{kinks} unit{'s' * (kinks != 1)} at a kink: failing tensors after "
                            "them judged by the reference with the model's side there")
    if any(c.note.startswith(ROUNDING_NOTE) for c in result.comparisons):
        result.notes.append(CANCELLING)
    if not result.passed:
        found = diagnose(model, params, (x, y), mask, (trace, grads), result.comparisons,
                         actual, rerun)
        result.diagnoses += [found] if found else []
