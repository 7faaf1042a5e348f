"""The learner's layers as verify numbers them: the spec's layers with parameters
(``spec.layer_names``, dense and conv alike), 1-based, each with its weight and bias names.

A declaration's per-layer roles (``z``, ``h``, ``delta``, ``dW``, ``db``, ``W``, ``b``, ...)
and the inputs ``W1, b1, W2, ...`` handed to the learner's code follow this numbering, whatever
spec builds the list: the MLP's ``layer<l>`` (``W<l>``, ``b<l>``), the CNN's ``conv<i>`` then
``fc<j>`` (``conv1.W``, ``fc1.b``), a ``net`` list's ``conv1``, ``dense1``...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnparity.reference.family import Spec

from .norms import NORM_KINDS


@dataclass(frozen=True)
class ParamLayer:
    """Layer ``index`` (1-based) of the learner's numbering: its ``name`` (the trace and delta
    key), its weight's parameter name and kind (``dense`` or ``conv``), its bias's (or None)."""

    index: int
    name: str
    weight: str
    kind: str
    bias: str | None


def param_layers(spec: Spec) -> list[ParamLayer]:
    """The layers with weights, in order, normalisations left to :mod:`.norms` (a PReLU's slope
    is numbered apart: :mod:`nnparity.verify.slopes`; ``ValueError`` for a parameter verify
    cannot hand to the learner)."""
    found = []
    for layer, shape in zip(spec.net, spec.layer_shapes, strict=False):
        specs: dict[str, Any] = layer.param_specs(shape)
        if not specs or layer.kind in NORM_KINDS:  # numbered apart: :mod:`.norms`
            continue
        kinds = {kind: name for name, (_, kind) in specs.items()}
        if set(kinds) == {"slope"}:
            continue
        if layer.role != "param" or set(kinds) - {"dense", "conv", "bias"}:
            raise ValueError(f"layer {layer.name} ({layer.kind}) has parameters verify cannot "
                             "hand to your code (only dense and conv weights and biases, PReLU "
                             "slopes, batch and layer normalisations)")
        weight_kind = "conv" if "conv" in kinds else "dense"
        found.append(ParamLayer(len(found) + 1, layer.name, kinds[weight_kind], weight_kind,
                                kinds.get("bias")))
    return found


def has_maps(spec: Spec) -> bool:
    """True when some tensor of the network is a feature map ``(H, W, C)``."""
    return any(len(shape) == 3 for shape in spec.layer_shapes)
