"""What explains a user's model failing its check, each explanation confirmed by re-running the
reference with the mistake (or, for a backward, by the tensors around it).

- ``softmax before cross-entropy``: the model's output equals the softmax of the reference's
  logits (the loss already applies softmax: the model applies it twice);
- ``loss precision``: a Keras loss object computes in its own dtype (``floatx``, float32, by
  default) whatever the model's: the reference's loss of the model's output rounded to that dtype
  matches the model's loss;
- ``activation backward``: forward and the deltas of the later layers match, the delta of one
  layer does not: the backward of that layer's activation (a custom module or autograd
  Function) disagrees with the derivative of its forward;
- ``flatten order`` (ports): see :mod:`.port`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnparity.backends import registry
from nnparity.backends.compare import Comparison, compare_tensor, first_divergence, tolerance
from nnparity.reference.losses import as_targets, loss_and_grad, softmax
from nnparity.reference.results import Gradients, Trace


def _double_softmax(model: Any, params: dict, batch: tuple, mask: Any,
                    output: np.ndarray) -> str | None:
    """The model's output against softmax of the reference's logits."""
    if not getattr(model.structure, "softmax_output", False):
        return None
    spec = model.spec
    kwargs = {} if mask is None else {"dropout_mask": mask}
    logits = registry.get("numpy").forward(spec, params, batch[0], **kwargs).output
    rerun = compare_tensor("forward", "output", output, softmax(logits),
                           tolerance(spec.dtype, spec.family))
    if not rerun.passed:
        return None
    return ("softmax applied before a cross-entropy that already includes it: the model's "
            "output is the softmax of the reference's logits (re-run with the extra softmax: "
            f"max rel {rerun.max_rel:.1e}); drop the final softmax, or use NLLLoss on its log")


def _loss_precision(model: Any, batch: tuple, trace: Trace, grads: Gradients,
                    comparisons: list[Comparison]) -> str | None:
    """The reference's loss on the output rounded to the loss object's dtype."""
    spec, dtype = model.spec, getattr(model, "loss_dtype", model.spec.dtype)
    first = first_divergence(comparisons)
    if dtype == spec.dtype or first is None or first.stage != "loss":
        return None
    output = trace.output.astype(dtype)
    t = as_targets(spec.loss, batch[1], len(output), spec.output_dim, np.dtype(dtype))
    value, _ = loss_and_grad(spec.loss, output, t, spec.reduction)
    rerun = compare_tensor("loss", "loss", np.float64(grads.loss), np.float64(value),
                           tolerance(dtype, spec.family))
    if not rerun.passed:
        return None
    return (f"the loss object computes in {dtype} while the model is {spec.dtype} (re-run in "
            f"{dtype}: max rel {rerun.max_rel:.1e}); give the loss dtype='{spec.dtype}'")


def _activation_backward(model: Any, comparisons: list[Comparison]) -> str | None:
    first = first_divergence(comparisons)
    if first is None or first.stage != "delta":
        return None
    if any(not c.passed for c in comparisons if c.stage in ("forward", "loss")):
        return None
    layer = first.name
    label = model.structure.activations.get(layer)
    if label is None:
        return None
    return (f"forward, loss and the deltas after {layer} match, the delta of {layer} does not: "
            f"the backward of {label} disagrees with the derivative of its forward")


def diagnose(model: Any, params: dict, batch: tuple, mask: Any, actual: tuple[Trace, Gradients],
             comparisons: list[Comparison]) -> str | None:
    """The first explanation that its re-run confirms, or None."""
    trace, grads = actual
    return (_double_softmax(model, params, batch, mask, trace.output)
            or _loss_precision(model, batch, trace, grads, comparisons)
            or _activation_backward(model, comparisons))
