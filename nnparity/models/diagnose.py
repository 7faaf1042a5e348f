"""What explains a user's model failing its check, each explanation confirmed by re-running the
reference with the mistake (or, for a backward, by the tensors around it).

- ``softmax before cross-entropy``: the model's output equals the softmax of the reference's
  logits (the loss already applies softmax: the model applies it twice);
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
from nnparity.reference.losses import softmax


def _double_softmax(model: Any, params: dict, batch: tuple, mask: Any,
                    output: np.ndarray) -> str | None:
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


def diagnose(model: Any, params: dict, batch: tuple, mask: Any, output: np.ndarray,
             comparisons: list[Comparison]) -> str | None:
    """The first explanation that the re-run confirms, or None."""
    return (_double_softmax(model, params, batch, mask, output)
            or _activation_backward(model, comparisons))
