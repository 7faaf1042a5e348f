"""The learner's layers as verify numbers them: the spec's layers with parameters
(``spec.layer_names``, dense and conv alike), 1-based, each with its weight and bias names.

A declaration's per-layer roles (``z``, ``h``, ``delta``, ``dW``, ``db``, ``W``, ``b``, ...)
and the inputs ``W1, b1, W2, ...`` handed to the learner's code follow this numbering, whatever
spec builds the list: the MLP's ``layer<l>`` (``W<l>``, ``b<l>``), the CNN's ``conv<i>`` then
``fc<j>`` (``conv1.W``, ``fc1.b``), a ``net`` list's ``conv1``, ``dense1``...

A residual block's dense and conv layers are numbered where they run, in forward order with
the outer ones: for ``dense, residual[dense, relu, dense], dense`` the learner's ``W1`` is the
first dense, ``W2`` and ``W3`` the block's, ``W4`` the last (the skip path has no parameters;
a block with ``projection`` is refused, exit 2: its ``W``/``b`` have no ``z`` or delta of
their own to compare).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnparity.reference.family import Spec
from nnparity.reference.layers.residual import Residual

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
    found: list[ParamLayer] = []
    _number(spec.net, spec.layer_shapes, found)
    return found


def _number(net: tuple[Any, ...], shapes: list[Any], found: list[ParamLayer],
            block: str | None = None) -> None:
    """Append ``net``'s layers with weights to ``found``, a residual block's sub-list in place
    (``shapes``: each layer's input shape; ``block``: the block ``net`` is the sub-list of,
    where only dense and conv layers may hold parameters)."""
    for layer, shape in zip(net, shapes, strict=False):
        if isinstance(layer, Residual):
            if layer.projection:
                raise ValueError(f"layer {layer.name} (residual with a projection) has "
                                 "parameters verify cannot hand to your code yet (only an "
                                 "identity skip path)")
            _number(layer.net, layer.inner_shapes(shape), found, layer.name)
            continue
        specs: dict[str, Any] = layer.param_specs(shape)
        if specs and block is not None and (layer.role != "param" or layer.kind in NORM_KINDS):
            raise ValueError(f"layer {layer.name} ({layer.kind}) in residual block {block}: "
                             "verify hands your code only the dense and conv parameters of a "
                             "block")
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


def has_maps(spec: Spec) -> bool:
    """True when some tensor of the network is a feature map ``(H, W, C)``."""
    return any(len(shape) == 3 for shape in spec.layer_shapes)
