"""Every conversion at a backend's edges, in one place, in pure NumPy.

Canonical layouts (the reference's, DESIGN.md) against the frameworks':

| thing                  | canonical              | torch                    | keras  |
|------------------------|------------------------|--------------------------|--------|
| dense weight           | ``W [D_in, D_out]``    | ``Linear.weight = W.T``  | same   |
| dense bias             | ``[1, D]`` MLP, ``[D]`` CNN | ``[D]``             | ``[D]``|
| images                 | NHWC                   | NCHW                     | NHWC   |
| conv kernel            | HWIO                   | OIHW                     | HWIO   |
| first dense after conv | rows in NHWC order     | rows in NCHW order       | NHWC   |

Besides the tensor layouts, this module holds the other edge conversions both framework backends
share, so neither writes them twice: inputs (NHWC images become NCHW for torch), dropout masks
and the trainers' mask rule, labels (class indices or dense targets), the reference's flat
optimiser state (``"t"``, ``"m.W1"``, ``"v.W1"``) split per parameter and joined back, and the
assembly of framework results (named ``z.<layer>`` / ``h.<layer>`` tensors) into
:class:`Trace` / :class:`Gradients` in the canonical layout.

Parameters are converted by name and family: :func:`to_framework` / :func:`from_framework` take
the spec, so ``conv1.W`` (HWIO <-> OIHW) and ``fc1.W`` (NHWC <-> NCHW row order, then the
transpose) are handled where the MLP's ``W1`` is.

Every function returns a new C-contiguous array (never a view into its argument), so a framework
tensor made from the result owns its memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nnparity.reference.cnn import draw_dropout_mask
from nnparity.reference.dropout import check_mask
from nnparity.reference.losses import as_targets
from nnparity.reference.results import Gradients, Trace

FRAMEWORKS = ("torch", "keras")
FAMILIES = ("mlp", "cnn")


def _copy(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).copy()


# --- dense layers --------------------------------------------------------------------------------


def dense_weight_to_torch(w: np.ndarray) -> np.ndarray:
    """Canonical ``W [D_in, D_out]`` -> ``nn.Linear.weight [D_out, D_in]`` (the transpose)."""
    return _copy(np.asarray(w).T)


def dense_weight_from_torch(weight: np.ndarray) -> np.ndarray:
    """``nn.Linear.weight [D_out, D_in]`` -> canonical ``W [D_in, D_out]``."""
    return _copy(np.asarray(weight).T)


def dense_weight_to_keras(w: np.ndarray) -> np.ndarray:
    """Canonical ``W [D_in, D_out]`` -> ``Dense.kernel [D_in, D_out]`` (the same layout)."""
    return _copy(w)


def dense_weight_from_keras(kernel: np.ndarray) -> np.ndarray:
    """``Dense.kernel [D_in, D_out]`` -> canonical ``W [D_in, D_out]``."""
    return _copy(kernel)


def bias_to_framework(b: np.ndarray) -> np.ndarray:
    """Canonical ``b [1, D]`` (MLP) or ``[D]`` (CNN) -> the frameworks' ``[D]``."""
    return _copy(np.asarray(b).reshape(-1))


def bias_from_framework(b: np.ndarray, family: str = "mlp") -> np.ndarray:
    """The frameworks' ``[D]`` -> canonical ``[1, D]`` for ``mlp``, ``[D]`` for ``cnn``."""
    flat = np.asarray(b).reshape(-1)
    return _copy(flat.reshape(1, -1) if family == "mlp" else flat)


def to_framework(framework: str, name: str, value: np.ndarray, spec: Any = None) -> np.ndarray:
    """A parameter (or a same-shaped optimiser slot) in ``framework``'s layout.

    MLP (``spec`` None or an ``MLPSpec``): ``W<i>`` transposed for ``torch``, ``b<i>`` flattened
    to ``[D]``, a PReLU slope ``a<i> [1]`` unchanged (``nn.PReLU.weight``, Keras' shared
    ``alpha``). CNN: ``conv<i>.W`` HWIO -> OIHW for ``torch`` (unchanged for ``keras``),
    ``fc1.W`` rows permuted NHWC -> NCHW flatten order for ``torch``, then every ``fc<j>.W``
    transposed for ``torch``; biases ``[D]`` unchanged.
    """
    _check_framework(framework)
    torch = framework == "torch"
    layer, kind = _split_name(name, spec)
    if kind == "a":
        return _copy(value)
    if kind == "b":
        return bias_to_framework(value)
    if layer.startswith("conv"):
        return hwio_to_oihw(value) if torch else _copy(value)
    if torch and layer == "fc1":
        value = dense_rows_nhwc_to_nchw(value, *spec.feature_shapes()[-1])
    return dense_weight_to_torch(value) if torch else dense_weight_to_keras(value)


def from_framework(framework: str, name: str, value: np.ndarray, spec: Any = None) -> np.ndarray:
    """Inverse of :func:`to_framework`: back to the canonical layout (``b [1, D]`` for the MLP,
    ``[D]`` for the CNN)."""
    _check_framework(framework)
    torch = framework == "torch"
    layer, kind = _split_name(name, spec)
    if kind == "a":
        return _copy(np.asarray(value).reshape(1))
    if kind == "b":
        return bias_from_framework(value, family_of(spec))
    if layer.startswith("conv"):
        return oihw_to_hwio(value) if torch else _copy(value)
    w = dense_weight_from_torch(value) if torch else dense_weight_from_keras(value)
    if torch and layer == "fc1":
        w = dense_rows_nchw_to_nhwc(w, *spec.feature_shapes()[-1])
    return w


def family_of(spec: Any) -> str:
    """``spec.family``; ``mlp`` for ``None`` (the MLP-only callers' default)."""
    return "mlp" if spec is None else getattr(spec, "family", None)


def _split_name(name: str, spec: Any) -> tuple[str, str]:
    """``(layer, kind)``: ``conv1.W -> (conv1, W)``; MLP ``W1 -> (layer1, W)``,
    ``b1 -> (layer1, b)``, ``a1 -> (layer1, a)``."""
    if family_of(spec) == "cnn":
        layer, _, kind = name.partition(".")
        return layer, kind
    return f"layer{name[1:]}", name[0]


def _check_framework(framework: str) -> None:
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; known: {', '.join(FRAMEWORKS)}")


# --- images and convolutions (for the CNN family) ------------------------------------------------


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """Images ``[N, H, W, C]`` -> ``[N, C, H, W]``."""
    return _copy(np.transpose(x, (0, 3, 1, 2)))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """Images ``[N, C, H, W]`` -> ``[N, H, W, C]``."""
    return _copy(np.transpose(x, (0, 2, 3, 1)))


def hwio_to_oihw(k: np.ndarray) -> np.ndarray:
    """Conv kernel ``[KH, KW, C_in, C_out]`` (canonical, Keras) -> torch's
    ``[C_out, C_in, KH, KW]``."""
    return _copy(np.transpose(k, (3, 2, 0, 1)))


def oihw_to_hwio(k: np.ndarray) -> np.ndarray:
    """torch's conv kernel ``[C_out, C_in, KH, KW]`` -> canonical ``[KH, KW, C_in, C_out]``."""
    return _copy(np.transpose(k, (2, 3, 1, 0)))


def nchw_flatten_order(h: int, w: int, c: int) -> np.ndarray:
    """Index array ``p [H*W*C]``: ``flat_nchw = flat_nhwc[p]``.

    Entry ``j`` of a torch-style NCHW flatten (``j = c_*H*W + h_*W + w_``) is entry
    ``p[j] = h_*W*C + w_*C + c_`` of the NHWC flatten of the same feature map.
    """
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)


def dense_rows_nhwc_to_nchw(w: np.ndarray, h: int, width: int, c: int) -> np.ndarray:
    """First dense weight after a conv, ``[H*W*C, D]`` with rows in NHWC flatten order ->
    rows in NCHW flatten order, so ``flatten_nchw(x) @ result == flatten_nhwc(x) @ w``."""
    w = np.asarray(w)
    _check_rows(w, h, width, c)
    return _copy(w[nchw_flatten_order(h, width, c)])


def dense_rows_nchw_to_nhwc(w: np.ndarray, h: int, width: int, c: int) -> np.ndarray:
    """Inverse of :func:`dense_rows_nhwc_to_nchw`: rows back to NHWC flatten order."""
    w = np.asarray(w)
    _check_rows(w, h, width, c)
    out = np.empty_like(w)
    out[nchw_flatten_order(h, width, c)] = w
    return out


def flat_nchw_to_nhwc(flat: np.ndarray, h: int, width: int, c: int) -> np.ndarray:
    """A torch flatten ``[N, C*H*W]`` (NCHW order) -> the NHWC flatten ``[N, H*W*C]`` of the same
    feature map (what the reference's ``h['flatten']`` holds)."""
    flat = np.asarray(flat)
    out = np.empty_like(flat)
    out[:, nchw_flatten_order(h, width, c)] = flat
    return out


def _check_rows(w: np.ndarray, h: int, width: int, c: int) -> None:
    if w.ndim != 2 or w.shape[0] != h * width * c:
        raise ValueError(
            f"dense weight of shape {w.shape} does not have H*W*C = {h}*{width}*{c} rows"
        )


# --- inputs and labels ---------------------------------------------------------------------------


def check_spec(spec: Any, backend: str) -> None:
    """Raise ``ValueError`` unless ``spec`` is an MLP or a CNN spec."""
    family = getattr(spec, "family", None)
    if family not in FAMILIES:
        raise ValueError(f"the {backend} backend supports the mlp family and the cnn family, "
                         f"not {family!r}")


def check_variant(optimizer: Any, variant: str, backend: str, api: str) -> None:
    """Raise ``ValueError`` unless ``optimizer`` (a reference ``Optimizer``) uses the backend's
    native ``variant``, implemented by ``api`` (even plain SGD differs: Keras rounds the rate)."""
    if optimizer.variant != variant:
        raise ValueError(
            f"the {backend} backend implements the {variant!r} variant of {optimizer.name} "
            f"({api}), not {optimizer.variant!r}: use Optimizer(..., variant={variant!r})"
        )


def as_input(spec: Any, x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy in the spec's dtype of ``x [N, input_dim]`` (MLP) or
    ``x [N, H, W, C]`` (CNN, NHWC); the shape is checked."""
    x = np.asarray(x, dtype=spec.dtype)
    if family_of(spec) == "cnn":
        if x.ndim != 4 or x.shape[1:] != tuple(spec.input_shape):
            h, w, c = spec.input_shape
            raise ValueError(f"input of shape {x.shape} does not fit [N, {h}, {w}, {c}] (NHWC)")
    elif x.ndim != 2 or x.shape[1] != spec.input_dim:
        raise ValueError(f"input of shape {x.shape} does not fit input_dim {spec.input_dim}")
    return _copy(x)


def input_to_framework(framework: str, spec: Any, x: np.ndarray) -> np.ndarray:
    """:func:`as_input`, then NHWC -> NCHW for a ``torch`` CNN."""
    x = as_input(spec, x)
    return nhwc_to_nchw(x) if framework == "torch" and x.ndim == 4 else x


def as_dropout_mask(spec: Any, mask: np.ndarray | None, n: int) -> np.ndarray | None:
    """A checked 0/1 mask ``[n, spec.dropout_units]`` in the spec's dtype, or ``None``
    (evaluation). The MLP has no dropout: a mask for it is an error."""
    if mask is None:
        return None
    if family_of(spec) != "cnn":
        raise ValueError("the MLP has no dropout: dropout_mask must be None")
    return _copy(check_mask(mask, (n, spec.dropout_units)).astype(spec.dtype))


def dropout_mask_to_framework(framework: str, spec: Any,
                              mask: np.ndarray | None) -> np.ndarray | None:
    """A canonical mask ``[N, units]`` in the order of the framework's dropout input: permuted
    to NCHW flatten order for a torch CNN whose dropout follows the flatten directly (no hidden
    dense layer), else unchanged."""
    if mask is None or not _in_nchw_flatten_order(framework, spec, "h.dropout"):
        return mask
    return _copy(mask[:, nchw_flatten_order(*spec.feature_shapes()[-1])])


def training_mask(spec: Any, n: int, mask: np.ndarray | None,
                  rng: np.random.Generator) -> np.ndarray | None:
    """The mask of one training step, by the reference trainer's rule (``NumpyTrainer.step``):
    the given ``mask``, else for a CNN with ``keep_prob < 1`` a fresh one drawn from ``rng`` by
    ``draw_dropout_mask``, else ``None``. Same ``rng`` seed -> same masks in every backend."""
    if mask is None and family_of(spec) == "cnn" and spec.keep_prob < 1:
        mask = draw_dropout_mask(spec, n, rng)
    return as_dropout_mask(spec, mask, n)


def split_labels(
    loss: str, y: np.ndarray, n: int, k: int, dtype: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(targets [n, k] of dtype, indices [n] int64 or None)`` from labels ``y``.

    Labels are validated by the reference's ``as_targets``. Class indices ``[n]`` for ``ce``
    (the frameworks' sparse cross-entropy path) come back as int64 ``indices`` as well; the
    dense targets are always given, for losses that need them.
    """
    targets = as_targets(loss, y, n, k, np.dtype(dtype))
    y = np.asarray(y)
    sparse = loss == "ce" and y.ndim == 1 and y.dtype.kind in "biu"
    return targets, (y.astype(np.int64) if sparse else None)


# --- optimiser state -----------------------------------------------------------------------------


def split_state(state: dict[str, np.ndarray]) -> tuple[int, dict[str, dict[str, np.ndarray]]]:
    """Reference state -> ``(t, {param: {slot: array}})``, e.g. ``{"W1": {"m": .., "v": ..}}``.

    ``t`` is Adam's step count (0 when the state has none). Slots stay in the canonical layout.
    """
    t = int(state.get("t", 0))
    slots: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        if key == "t":
            continue
        slot, _, name = key.partition(".")
        if not name:
            raise ValueError(
                f"unknown optimizer state entry {key!r} (expected 't' or 'm.W1')"
            )
        slots.setdefault(name, {})[slot] = value
    return t, slots


def join_state(
    t: int | None, slots: dict[str, dict[str, np.ndarray]], order: Sequence[str]
) -> dict[str, np.ndarray]:
    """Inverse of :func:`split_state`: ``t`` (``None`` for no step count) and per-param slots
    -> the reference's flat state, ordered as the reference orders it: ``"t"`` first, then
    per parameter (in ``order``) its ``m`` before its ``v``."""
    state: dict[str, np.ndarray] = {} if t is None else {"t": np.array(t)}
    for name in order:
        per = slots.get(name, {})
        for slot in sorted(per, key=lambda s: (s != "m", s)):
            state[f"{slot}.{name}"] = per[slot]
    return state


# --- results -------------------------------------------------------------------------------------


def trace_cnn(
    spec: Any,
    x: Any,
    blocks: Sequence[Callable[[Any], tuple[Any, Any, Any]]],
    flatten: Callable[[Any], Any],
    dense: Sequence[tuple[Callable[[Any], Any], Callable[[Any], Any]]],
    dropout_mask: Any = None,
) -> dict[str, Any]:
    """The CNN forward pass both framework models run, on the framework's own tensors.

    ``blocks``: per conv block ``a -> (z, h, pooled or None)``; ``flatten``: the last map ->
    ``[N, D]``; ``dense``: per fc layer ``(linear, activation)``. Dropout on the output layer's
    input is ``h * (mask / keep_prob)`` with the given 0/1 mask (none: evaluation). Returns every
    ``z``/``h`` in forward order under the reference's keys: ``z.conv1``, ``h.conv1``,
    ``h.pool1``, ..., ``h.flatten``, ``z.fc1``, ``h.fc1``, ..., ``h.dropout``, ``z.fcM``,
    ``h.fcM`` (in the framework's layout: see :func:`make_trace`).
    """
    out: dict[str, Any] = {}
    a = x
    for i, (name, block) in enumerate(zip(spec.conv_names, blocks, strict=True), 1):
        out[f"z.{name}"], out[f"h.{name}"], pooled = block(a)
        a = out[f"h.{name}"]
        if pooled is not None:
            a = out[f"h.pool{i}"] = pooled
    h = out["h.flatten"] = flatten(a)
    last = len(spec.fc_names) - 1
    for j, (name, (linear, activation)) in enumerate(zip(spec.fc_names, dense, strict=True)):
        if j == last:
            if dropout_mask is not None:
                h = h * (dropout_mask / spec.keep_prob)
            out["h.dropout"] = h
        z = out[f"z.{name}"] = linear(h)
        h = out[f"h.{name}"] = activation(z)
    return out


def tensor_from_framework(framework: str, spec: Any, key: str, value: np.ndarray) -> np.ndarray:
    """A traced tensor (``z.conv1``, ``h.pool1``, ``h.flatten``, ``z.fc1``, ...) or a delta
    (keyed ``z.<layer>``) -> canonical layout: torch's NCHW maps -> NHWC, torch's NCHW-order
    ``h.flatten`` -> NHWC order; everything else is copied."""
    value = np.asarray(value)
    if framework == "torch" and value.ndim == 4:
        return nchw_to_nhwc(value)
    if _in_nchw_flatten_order(framework, spec, key):
        return flat_nchw_to_nhwc(value, *spec.feature_shapes()[-1])
    return _copy(value)


def _in_nchw_flatten_order(framework: str, spec: Any, key: str) -> bool:
    """Whether the traced ``key`` is laid out along torch's NCHW flatten: ``h.flatten``, and
    ``h.dropout`` (with its mask) when dropout follows the flatten directly (no hidden dense
    layer)."""
    return framework == "torch" and (key == "h.flatten" or (key == "h.dropout"
                                                            and not spec.dense))


def make_trace(framework: str, spec: Any, tensors: dict[str, np.ndarray]) -> Trace:
    """A :class:`Trace` from framework-layout tensors keyed ``z.<layer>`` / ``h.<name>`` in
    forward order; the output is the last ``h``."""
    trace = Trace(output=np.empty(0))
    for key, value in tensors.items():
        kind, _, name = key.partition(".")
        getattr(trace, kind)[name] = tensor_from_framework(framework, spec, key, value)
    trace.output = list(trace.h.values())[-1]
    return trace


def make_gradients(
    framework: str,
    spec: Any,
    loss: float,
    grads: dict[str, np.ndarray],
    deltas: dict[str, np.ndarray],
    output: np.ndarray,
) -> Gradients:
    """A :class:`Gradients` from framework-layout ``grads`` (by canonical name, in the spec's
    parameter order) and ``deltas`` ``dL/dz`` (by layer name), converted to the canonical
    layout."""
    return Gradients(
        loss=float(loss),
        grads={k: from_framework(framework, k, g, spec) for k, g in grads.items()},
        deltas={k: tensor_from_framework(framework, spec, f"z.{k}", d) for k, d in deltas.items()},
        output=_copy(output),
    )
