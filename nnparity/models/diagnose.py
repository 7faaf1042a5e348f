"""What explains a user's model failing its check, each explanation confirmed by re-running the
reference with the mistake (or, for a backward, by the tensors around it).

- ``softmax before cross-entropy``: the model's output equals the softmax of the reference's
  logits (the loss already applies softmax: the model applies it twice);
- ``dropout scaling``: the model's output equals the reference's with the same mask but kept
  units not scaled by ``1 / keep_prob`` (non-inverted dropout, ``h * mask``: the reference
  re-run at ``keep_prob = 1``);
- ``loss precision``: a Keras loss object computes in its own dtype (``floatx``, float32, by
  default) whatever the model's: the reference's loss of the model's output rounded to that dtype
  matches the model's loss;
- ``optimiser formula`` (a user's optimiser subclass with its own step): gradients match,
  the first update does not, and the reference's run with a classic mistake in its optimiser's
  :class:`~nnparity.reference.optim.Formula` reproduces it
  (:class:`~nnparity.parity.mistaken.MistakenReference`, run as the judged reference ran):
  Adam's epsilon added as the other framework adds it, AdamW's decay put into the gradient as
  L2, momentum with dampening ``(1 - mu)``;
- ``batch normalisation in training mode at evaluation``: the evaluation output equals the
  reference's forward on the batch's statistics (:mod:`.batchnorm_port`);
- ``activation backward``: forward and the deltas of the later layers match, the delta of one
  layer does not: the backward of that layer's activation (a custom module or autograd
  Function) disagrees with the derivative of its forward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnparity.backends import registry
from nnparity.backends.compare import (
    Comparison,
    Tensors,
    compare_tensor,
    first_divergence,
    tolerance_for,
)
from nnparity.parity.mistaken import Mistake, MistakenReference
from nnparity.parity.report import Diagnosis
from nnparity.parity.rounding_judge import Rerun
from nnparity.reference.losses import as_targets, loss_and_grad, softmax
from nnparity.reference.optim import Formula, Optimizer
from nnparity.reference.params import trainable
from nnparity.reference.results import Gradients, Trace

from .batchnorm_port import training_mode


def _double_softmax(model: Any, params: dict, batch: tuple, mask: Any,
                    output: np.ndarray) -> Diagnosis | None:
    """The model's output against softmax of the reference's logits."""
    if not getattr(model.structure, "softmax_output", False):
        return None
    spec = model.spec
    kwargs = {} if mask is None else {"dropout_mask": mask}
    logits = registry.get("numpy").forward(spec, params, batch[0], **kwargs).output
    rerun = compare_tensor("forward", "output", output, softmax(logits),
                           tolerance_for(spec))
    if not rerun.passed:
        return None
    evidence = f"re-run with the extra softmax: max rel {rerun.max_rel:.1e}"
    return Diagnosis("double-softmax", "softmax applied before a cross-entropy that already "
                     "includes it: the model's output is the softmax of the reference's logits "
                     f"({evidence}); drop the final softmax, or use NLLLoss on its log", evidence)


def _dropout_scaling(model: Any, params: dict, batch: tuple, mask: Any,
                     output: np.ndarray) -> Diagnosis | None:
    """The model's output against the reference's with the mask but no ``1 / keep_prob``."""
    spec = model.spec
    if mask is None or spec.keep_prob == 1:
        return None
    plain = spec.with_(keep_prob=1.0)
    rerun = registry.get("numpy").forward(plain, params, batch[0], dropout_mask=mask).output
    check = compare_tensor("forward", "output", output, rerun, tolerance_for(spec))
    if not check.passed:
        return None
    evidence = f"re-run of the reference with h * mask: max rel {check.max_rel:.1e}"
    return Diagnosis("dropout-scaling", f"dropout is not inverted: kept units are not scaled by "
                     f"1/keep_prob = {1 / spec.keep_prob:.4g} in training ({evidence}); scale "
                     "by 1/keep_prob in training and not at evaluation", evidence)


def _loss_precision(model: Any, batch: tuple, trace: Trace, grads: Gradients,
                    comparisons: list[Comparison]) -> Diagnosis | None:
    """The reference's loss on the output rounded to the loss object's dtype."""
    spec, dtype = model.spec, getattr(model, "loss_dtype", model.spec.dtype)
    first = first_divergence(comparisons)
    if dtype == spec.dtype or first is None or first.stage != "loss":
        return None
    output = trace.output.astype(dtype)
    t = as_targets(spec.loss, batch[1], len(output), spec.output_dim, np.dtype(dtype))
    value, _ = loss_and_grad(spec.loss, output, t, spec.reduction)
    rerun = compare_tensor("loss", "loss", np.float64(grads.loss), np.float64(value),
                           tolerance_for(spec, dtype))
    if not rerun.passed:
        return None
    evidence = f"re-run in {dtype}: max rel {rerun.max_rel:.1e}"
    return Diagnosis("loss-precision", f"the loss object computes in {dtype} while the model is "
                     f"{spec.dtype} ({evidence}); give the loss dtype='{spec.dtype}'", evidence)


def _mistakes(opt: Optimizer) -> list[tuple[str, Formula]]:
    """``(description, formula)`` for each classic mistake in ``opt``'s formula."""
    out = []
    if opt.name == "adam":
        eps_hat = opt.variant == "torch"
        placement = ("to sqrt(v) before the bias correction (epsilon-hat, Keras' placement)"
                     if eps_hat else "after the bias-corrected sqrt(v) (torch's placement)")
        out.append((f"Adam's epsilon added {placement}",
                    Formula(form="keras" if eps_hat else "torch",
                            rounded=opt.variant == "keras")))
    if opt.name == "adamw":
        out.append(("AdamW's decoupled decay applied as L2 in the gradient (Adam with "
                    "g + wd p)", Formula(decoupled=False)))
    if opt.name == "momentum":
        out.append(("momentum with dampening: v = mu v + (1 - mu) g",
                    Formula(momentum="average")))
    return out


def _optimizer_formula(model: Any, params: dict, rerun: Rerun, actual: Tensors,
                       comparisons: list[Comparison]) -> Diagnosis | None:
    """A failing first step that the reference's run with a mistaken formula reproduces
    (``rerun`` runs a backend as the judged run ran)."""
    first = first_divergence(comparisons)
    if model.optimizer is None or first is None or first.stage != "update" \
            or not first.name.startswith("step1."):
        return None
    spec = model.spec
    tol = tolerance_for(spec)
    for text, formula in _mistakes(model.optimizer):
        stepped = rerun(MistakenReference(Mistake(formula=formula)))
        checks = [compare_tensor("update", k, actual.get(("update", f"step1.{k}")),
                                 stepped[("update", f"step1.{k}")], tol)
                  for k in trainable(spec, params)]  # running statistics are no optimiser's
        if all(c.passed for c in checks):
            worst = max(c.max_rel for c in checks)
            evidence = (f"the reference's first step with that mistake reproduces the "
                        f"model's (max rel {worst:.1e})")
            return Diagnosis("optimizer-formula", f"{text}: {evidence}", evidence)
    return None


def _activation_backward(model: Any, comparisons: list[Comparison]) -> Diagnosis | None:
    first = first_divergence(comparisons)
    if first is None or first.stage != "delta":
        return None
    if any(not c.passed for c in comparisons if c.stage in ("forward", "loss")):
        return None
    layer = first.name
    label = model.structure.activations.get(layer)
    if label is None:
        return None
    evidence = f"forward, loss and the deltas after {layer} match, the delta of {layer} does not"
    return Diagnosis("activation-backward", f"{evidence}: the backward of {label} disagrees "
                     "with the derivative of its forward", evidence)


def _training_mode(model: Any, params: dict, batch: tuple,
                   comparisons: list[Comparison]) -> Diagnosis | None:
    """A failing evaluation output that the reference's forward on the batch's statistics
    reproduces (:func:`.batchnorm_port.training_mode`)."""
    failed = next((c for c in comparisons if c.name == "eval.output" and not c.passed), None)
    if failed is None:
        return None
    model.load_params(params)  # the steps moved them
    output = model.run(*batch, training=False)[0].output
    return training_mode(model.spec, params, batch[0], output, tolerance_for(model.spec),
                         model.source.label)


def diagnose(model: Any, params: dict, batch: tuple, mask: Any, actual: tuple[Trace, Gradients],
             comparisons: list[Comparison], tensors: Tensors, rerun: Rerun) -> Diagnosis | None:
    """The first explanation that its re-run confirms, or None (``tensors``: the model's
    collected tensors; ``rerun``: runs a backend, the reference with a mistake, as the
    reference's judged run ran)."""
    trace, grads = actual
    return (_double_softmax(model, params, batch, mask, trace.output)
            or _training_mode(model, params, batch, comparisons)
            or _dropout_scaling(model, params, batch, mask, trace.output)
            or _loss_precision(model, batch, trace, grads, comparisons)
            or _optimizer_formula(model, params, rerun, tensors, comparisons)
            or _activation_backward(model, comparisons))
