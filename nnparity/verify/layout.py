"""Conversions between the learner's layout (as the adapter declares it) and the canonical one.

Canonical (the BP lecture, the reference): ``x, z, h, delta [N, D]``, ``W [D_in, D_out]``, a bias
in its spec's shape (``[1, D]`` for the MLP, ``[D]`` otherwise), images and feature maps NHWC,
conv kernels HWIO, the first dense weight after a conv stack with rows in NHWC flatten order.
The learner's may differ, each as declared: column layout (the Fashion-MNIST report: the
transposes of 2-D tensors, ``x [D, N]``, ``W [D_out, D_in]``), ``maps`` NCHW, ``kernel`` OIHW,
``flatten`` NCHW (that dense weight's rows in NCHW flatten order), ``bias_shape``. A tensor of
the wrong shape is left as it is (compare reports it).

Raw results from the subprocess are keyed ``"output"``, ``"loss"`` or ``"<role>/<layer>"``
(1-based, the numbering of :mod:`nnparity.verify.netview`), e.g. ``"dW/2"``; canonical ones
``(stage, name)`` as in :func:`nnparity.backends.compare.collect`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from nnparity.backends.compare import Tensors
from nnparity.backends.layout import nchw_flatten_order
from nnparity.reference.family import Spec
from nnparity.reference.losses import as_targets

from . import norms
from .adapters import Adapter

# role -> (stage, canonical name pattern: {name} the layer, {W}/{b} its parameters, {s} the step)
ROLES = {
    "z": ("forward", "z.{name}"),
    "h": ("forward", "h.{name}"),
    "delta": ("delta", "{name}"),
    "dW": ("grad", "{W}"),
    "db": ("grad", "{b}"),
    "W_new": ("update", "step{s}.{W}"),
    "b_new": ("update", "step{s}.{b}"),
    "da": ("grad", "{a}"),
}
TO_NCHW, TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)
TO_OIHW, TO_HWIO = (3, 2, 0, 1), (2, 3, 1, 0)


def targets(spec: Spec, y: np.ndarray) -> np.ndarray:
    """Dense targets ``[N, K]`` in the spec's dtype (one-hot for class indices)."""
    return as_targets(spec.loss, y, len(y), spec.output_dim, np.dtype(spec.dtype))


def user_inputs(
    adapter: Adapter, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
    masks: Sequence[np.ndarray] = (),
) -> dict[str, np.ndarray]:
    """``x``, ``y``, ``W1, b1, ...``, the PReLU slopes ``a1, ...`` and the dropout layers'
    ``mask1, mask2, ...`` in the learner's layout (fresh C-contiguous copies)."""
    column = adapter.layout == "column"
    labels = y if adapter.labels == "index" else targets(adapter.spec, y)
    arrays = {"x": _act_to_user(adapter, x),
              "y": labels.T if column and labels.ndim == 2 else labels}
    for layer in adapter.layers:
        arrays[f"W{layer.index}"] = param_to_user(adapter, layer.weight, params[layer.weight])
        if layer.bias is not None:
            arrays[f"b{layer.index}"] = _bias_to_user(params[layer.bias], adapter.bias_shape)
    arrays.update(norms.user_inputs(adapter.norms, params))
    for slope in adapter.slopes:
        arrays[f"a{slope.index}"] = param_to_user(adapter, slope.slope, params[slope.slope])
    for index, mask in enumerate(masks, 1):
        arrays[f"mask{index}"] = _act_to_user(adapter, mask)
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def _act_to_user(adapter: Adapter, value: np.ndarray) -> np.ndarray:
    """An input, activation or delta in the learner's layout (NCHW maps, column vectors)."""
    if value.ndim == 4 and adapter.maps == "NCHW":
        return np.transpose(value, TO_NCHW)
    return value.T if adapter.layout == "column" and value.ndim == 2 else value


def _act_from_user(adapter: Adapter, value: np.ndarray) -> np.ndarray:
    if value.ndim == 4 and adapter.maps == "NCHW":
        return np.transpose(value, TO_NHWC)
    return value.T if adapter.layout == "column" and value.ndim == 2 else value


def _flatten_rows(adapter: Adapter, param: str, value: np.ndarray) -> np.ndarray | None:
    """The row order of the learner's ``param`` when it is the first dense weight after a
    flatten declared NCHW and has its rows (``flat_user = flat_nhwc[order]``), else None."""
    spec = adapter.spec
    if adapter.flatten != "NCHW" or param not in spec.flat_params or value.ndim != 2 \
            or value.shape[0] != int(np.prod(spec.flat_map)):
        return None
    return nchw_flatten_order(*spec.flat_map)


def param_to_user(adapter: Adapter, param: str, value: np.ndarray) -> np.ndarray:
    """A canonical weight in the learner's layout (an OIHW kernel, permuted and/or transposed
    dense rows); a bias goes through :func:`_bias_to_user`."""
    kind = adapter.spec.param_kind(param)
    if kind == "bias":
        return _bias_to_user(value, adapter.bias_shape)
    if kind == "conv":
        return np.transpose(value, TO_OIHW) if adapter.kernel == "OIHW" else value
    order = _flatten_rows(adapter, param, value)
    value = value[order] if order is not None else value
    return value.T if adapter.layout == "column" and value.ndim == 2 else value


def param_from_user(adapter: Adapter, param: str, value: np.ndarray) -> np.ndarray:
    """Inverse of :func:`param_to_user` (a bias of the right size takes the spec's shape)."""
    spec = adapter.spec
    kind = spec.param_kind(param)
    if kind == "bias":
        shape = spec.param_shapes()[param]
        if value.size == int(np.prod(shape)):
            return value.reshape(shape)
        squeezable = value.ndim < 2 or (value.ndim == 2 and 1 in value.shape)
        return value.reshape((1, -1)[-len(shape):]) if squeezable else value
    if kind == "conv":
        return np.transpose(value, TO_HWIO) if adapter.kernel == "OIHW" and value.ndim == 4 \
            else value
    value = value.T if adapter.layout == "column" and value.ndim == 2 else value
    order = _flatten_rows(adapter, param, value)
    if order is None:
        return value
    rows = np.empty_like(value)
    rows[order] = value
    return rows


def _bias_to_user(b: np.ndarray, shape: str) -> np.ndarray:
    flat = b.reshape(-1)
    return {"row": flat.reshape(1, -1), "column": flat.reshape(-1, 1), "flat": flat}[shape]


def step_label(step: int) -> str:
    """The update stage's label of optimiser step ``step`` (1-based): ``step1``, ``step2``..."""
    return f"step{step}"


def canonical_key(adapter: Adapter, role: str, layer: int, step: int = 1) -> tuple[str, str]:
    """``("grad", "W2")`` for ``("dW", 2)`` (an MLP), ``("grad", "conv1.W")`` for ``("dW", 1)``
    (a CNN); ``("update", "step3.W2")`` for ``("W_new", 2, 3)``."""
    stage, pattern = ROLES[role]
    if role == "da":
        if not 1 <= layer <= len(adapter.slopes):
            raise KeyError(f"{role}/{layer}")
        return stage, pattern.format(a=adapter.slopes[layer - 1].slope)
    if not 1 <= layer <= adapter.depth:
        raise KeyError(f"{role}/{layer}")
    entry = adapter.layers[layer - 1]
    if role in ("db", "b_new") and entry.bias is None:
        raise KeyError(f"{role}/{layer}")
    return stage, pattern.format(name=entry.name, W=entry.weight, b=entry.bias, s=step)


def canonical_of(adapter: Adapter, key: str, raw_keys: Collection[str] = ()) -> \
        tuple[str, str] | None:
    """The canonical key of the learner's raw key ``key`` (``None`` for ``output`` when the
    last layer's ``h`` is in ``raw_keys`` too)."""
    depth = adapter.depth
    if key == "loss":
        return ("loss", "loss")
    if key == "output":
        return None if f"h/{depth}" in raw_keys else canonical_key(adapter, "h", depth)
    norm = norms.canonical_of(adapter.norms, key)
    if norm is not None:
        return norm
    return canonical_key(adapter, *_parse_key(key))


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
        value = from_learner(adapter, target, value)
        if target[0] in ("delta", "grad") and scale != 1.0:
            value = value * value.dtype.type(scale) if value.dtype.kind == "f" else value
        tensors[target] = value
    return tensors


def param_of(key: tuple[str, str]) -> str | None:
    """The parameter a gradient or update key names (``W2`` for ``("update", "step1.W2")``);
    None for an activation, a delta or the loss."""
    stage, name = key
    return name if stage == "grad" else name.split(".", 1)[1] if stage == "update" else None


def from_learner(adapter: Adapter, key: tuple[str, str], value: np.ndarray) -> np.ndarray:
    """The learner's tensor at canonical ``key`` (not the loss) in the canonical layout."""
    value = np.asarray(value)
    param = param_of(key)
    return _act_from_user(adapter, value) if param is None else \
        param_from_user(adapter, param, value)


def to_learner(adapter: Adapter, key: tuple[str, str], value: np.ndarray) -> np.ndarray:
    """A canonical tensor at ``key`` (not the loss) in the learner's layout."""
    param = param_of(key)
    return _act_to_user(adapter, value) if param is None else \
        param_to_user(adapter, param, value)


def user_shape(adapter: Adapter, key: tuple[str, str], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a canonical tensor has in the learner's declared layout (a flat bias ``(D,)``,
    a column bias ``(D, 1)``, a transposed weight in column layout, an NCHW map, an OIHW
    kernel, a scalar loss ``()``)."""
    if key[0] == "loss":
        return ()
    return tuple(to_learner(adapter, key, np.zeros(shape)).shape)


def learner_index(adapter: Adapter, key: tuple[str, str], shape: tuple[int, ...],
                  index: list[int]) -> list[int]:
    """The index, in the learner's layout, of entry ``index`` of the canonical tensor of
    ``shape`` at ``key`` (through the very conversion its values take: transposed, NCHW,
    OIHW, rows in the learner's flatten order, a reshaped bias)."""
    if key[0] == "loss":
        return index
    positions = np.arange(int(np.prod(shape))).reshape(shape)
    flat = np.ravel_multi_index(tuple(index), shape)
    return [int(i) for i in np.argwhere(to_learner(adapter, key, positions) == flat)[0]]


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


def from_user(value: np.ndarray, kind: str, layout: str, shape: tuple[int, ...]) -> np.ndarray:
    """A golden vector's tensor of ``kind`` (``act``, ``weight``, ``bias``) from a program's
    ``layout`` (``row``/``column``) to the canonical one, whose shape is ``shape``: a bias of
    its size takes it. Shape errors are left for compare."""
    value = np.asarray(value)
    if kind == "bias":
        if value.size == int(np.prod(shape)):
            return value.reshape(shape)
        squeezable = value.ndim < 2 or (value.ndim == 2 and 1 in value.shape)
        return value.reshape((1, -1)[-len(shape):]) if squeezable else value
    if layout == "column" and value.ndim == 2:
        return value.T
    return value
