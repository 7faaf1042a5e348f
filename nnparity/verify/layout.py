"""Conversions between the learner's layout (as the adapter declares it) and the canonical one.

Canonical (the BP lecture): ``x, z, h, delta [N, D]``, ``W [D_in, D_out]``, ``b [1, D]``.
Column layout (the Fashion-MNIST report): the transposes, ``x [D, N]`` column vectors and
``W [D_out, D_in]``. Biases come in the declared ``bias_shape``; any bias with the right number
of entries is read back.

Raw results from the subprocess are keyed ``"output"``, ``"loss"`` or ``"<role>/<layer>"``
(1-based), e.g. ``"dW/2"``; canonical ones ``(stage, name)`` as in
:func:`nnparity.backends.compare.collect`.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from nnparity.backends.compare import Tensors
from nnparity.reference.losses import as_targets
from nnparity.reference.spec import MLPSpec

from .adapters import Adapter

# role -> (stage, canonical name pattern)
ROLES = {
    "z": ("forward", "z.layer{l}"),
    "h": ("forward", "h.layer{l}"),
    "delta": ("delta", "layer{l}"),
    "dW": ("grad", "W{l}"),
    "db": ("grad", "b{l}"),
    "W_new": ("update", "step{s}.W{l}"),
    "b_new": ("update", "step{s}.b{l}"),
}


def targets(spec: MLPSpec, y: np.ndarray) -> np.ndarray:
    """Dense targets ``[N, K]`` in the spec's dtype (one-hot for class indices)."""
    return as_targets(spec.loss, y, len(y), spec.output_dim, np.dtype(spec.dtype))


def user_inputs(
    adapter: Adapter, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> dict[str, np.ndarray]:
    """``x``, ``y``, ``W1, b1, ...`` in the learner's layout (fresh C-contiguous copies)."""
    column = adapter.layout == "column"
    labels = y if adapter.labels == "index" else targets(adapter.spec, y)
    arrays = {"x": x.T if column else x, "y": labels.T if column and labels.ndim == 2 else labels}
    for name, value in params.items():
        if name.startswith("W"):
            arrays[name] = value.T if column else value
        else:
            arrays[name] = _bias_to_user(value, adapter.bias_shape)
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def _bias_to_user(b: np.ndarray, shape: str) -> np.ndarray:
    flat = b.reshape(-1)
    return {"row": flat.reshape(1, -1), "column": flat.reshape(-1, 1), "flat": flat}[shape]


def step_label(step: int) -> str:
    """The update stage's label of optimiser step ``step`` (1-based): ``step1``, ``step2``..."""
    return f"step{step}"


def canonical_key(role: str, layer: int, step: int = 1) -> tuple[str, str]:
    """``("grad", "W2")`` for ``("dW", 2)``; ``("update", "step3.W2")`` for ``("W_new", 2, 3)``."""
    stage, pattern = ROLES[role]
    return stage, pattern.format(l=layer, s=step)


def canonical_of(adapter: Adapter, key: str, raw_keys: Collection[str] = ()) -> \
        tuple[str, str] | None:
    """The canonical key of the learner's raw key ``key`` (``None`` for ``output`` when the
    last layer's ``h`` is in ``raw_keys`` too)."""
    depth = adapter.spec.depth
    if key == "loss":
        return ("loss", "loss")
    if key == "output":
        return None if f"h/{depth}" in raw_keys else canonical_key("h", depth)
    return canonical_key(*_parse_key(key))


def to_canonical(adapter: Adapter, raw: dict[str, np.ndarray], n: int) -> Tensors:
    """The learner's results in the canonical layout, keyed and ordered like ``collect``."""
    spec = adapter.spec
    scale = 1.0
    if adapter.grads_reduction != spec.reduction:
        scale = 1.0 / n if adapter.grads_reduction == "sum" else float(n)
    tensors: Tensors = {}
    for key, value in raw.items():
        target = canonical_of(adapter, key, raw)
        if target is None:
            continue
        if target[0] == "loss":
            tensors[target] = np.asarray(value, dtype=np.float64).reshape(()) \
                if np.size(value) == 1 else np.asarray(value)
            continue
        value = from_user(value, kind_of(target), adapter.layout)
        if target[0] in ("delta", "grad") and scale != 1.0:
            value = value * value.dtype.type(scale) if value.dtype.kind == "f" else value
        tensors[target] = value
    return tensors


def kind_of(key: tuple[str, str]) -> str:
    """``act``, ``weight`` or ``bias`` for a canonical key (not the loss)."""
    stage, name = key
    if stage in ("forward", "delta"):
        return "act"
    return "bias" if name.split(".")[-1].startswith("b") else "weight"


def user_shape(adapter: Adapter, key: tuple[str, str], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a canonical tensor has in the learner's declared layout (a flat bias ``(D,)``,
    a column bias ``(D, 1)``, a transposed weight in column layout, a scalar loss ``()``)."""
    if key[0] == "loss":
        return ()
    kind = kind_of(key)
    if kind == "bias":
        return {"row": (1, shape[-1]), "column": (shape[-1], 1),
                "flat": (shape[-1],)}[adapter.bias_shape]
    return tuple(reversed(shape)) if adapter.layout == "column" and len(shape) == 2 else shape


def learner_shapes(adapter: Adapter, raw: dict[str, np.ndarray],
                   reference: Tensors) -> dict[tuple[str, str], tuple[tuple[int, ...], ...]]:
    """Per canonical key: the shape the learner's tensor had and the one its declaration asks
    for, both in the learner's layout (for messages: never the internal layout)."""
    shapes = {}
    for key, value in raw.items():
        target = canonical_of(adapter, key, raw)
        if target is not None and target in reference:
            expected = user_shape(adapter, target, np.shape(reference[target]))
            shapes[target] = (np.shape(value), expected)
    return shapes


def _parse_key(key: str) -> tuple[str, int, int]:
    """``"dW/2"`` -> ``("dW", 2, 1)``; ``"W_new/2@3"`` -> ``("W_new", 2, 3)``."""
    role, rest = key.split("/")
    layer, _, step = rest.partition("@")
    return role, int(layer), int(step or 1)


def from_user(value: np.ndarray, kind: str, layout: str) -> np.ndarray:
    """One tensor from the learner's layout to the canonical one (shape errors left for compare)."""
    value = np.asarray(value)
    if kind == "bias":
        squeezable = value.ndim < 2 or (value.ndim == 2 and 1 in value.shape)
        return value.reshape(1, -1) if squeezable else value
    if layout == "column" and value.ndim == 2:
        return value.T
    return value
