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
share, so neither writes them twice: labels (class indices or dense targets), the reference's
flat optimiser state (``"t"``, ``"m.W1"``, ``"v.W1"``) split per parameter and joined back, and
the assembly of per-layer framework results into :class:`Trace` / :class:`Gradients`.

Every function returns a new C-contiguous array (never a view into its argument), so a framework
tensor made from the result owns its memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnparity.reference.losses import as_targets
from nnparity.reference.results import Gradients, Trace

FRAMEWORKS = ("torch", "keras")


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


def to_framework(framework: str, name: str, value: np.ndarray) -> np.ndarray:
    """An MLP parameter (or a same-shaped optimiser slot) ``W<i>``/``b<i>`` in ``framework``'s
    layout: ``torch`` transposes weights, both flatten biases to ``[D]``."""
    _check_framework(framework)
    if name.startswith("b"):
        return bias_to_framework(value)
    return dense_weight_to_torch(value) if framework == "torch" else dense_weight_to_keras(value)


def from_framework(framework: str, name: str, value: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_framework`: back to ``W [D_in, D_out]`` / ``b [1, D]``."""
    _check_framework(framework)
    if name.startswith("b"):
        return bias_from_framework(value, "mlp")
    if framework == "torch":
        return dense_weight_from_torch(value)
    return dense_weight_from_keras(value)


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


def _check_rows(w: np.ndarray, h: int, width: int, c: int) -> None:
    if w.ndim != 2 or w.shape[0] != h * width * c:
        raise ValueError(
            f"dense weight of shape {w.shape} does not have H*W*C = {h}*{width}*{c} rows"
        )


# --- inputs and labels ---------------------------------------------------------------------------


def check_mlp(spec: Any, backend: str, dropout_mask: np.ndarray | None = None) -> None:
    """Raise ``ValueError`` unless ``spec`` is an MLP spec and no dropout mask is given."""
    family = getattr(spec, "family", None)
    if family != "mlp":
        raise ValueError(f"the {backend} backend supports the mlp family, not {family!r}")
    if dropout_mask is not None:
        raise ValueError("the MLP has no dropout: dropout_mask must be None")


def check_variant(optimizer: Any, variant: str, backend: str, api: str) -> None:
    """Raise ``ValueError`` unless ``optimizer`` (a reference ``Optimizer``) uses the backend's
    native ``variant``, implemented by ``api`` (even plain SGD differs: Keras rounds the rate)."""
    if optimizer.variant != variant:
        raise ValueError(
            f"the {backend} backend implements the {variant!r} variant of {optimizer.name} "
            f"({api}), not {optimizer.variant!r}: use Optimizer(..., variant={variant!r})"
        )


def as_input(spec: Any, x: np.ndarray) -> np.ndarray:
    """``x [N, input_dim]`` as a C-contiguous copy in the spec's dtype (shape checked)."""
    x = np.asarray(x, dtype=spec.dtype)
    if x.ndim != 2 or x.shape[1] != spec.input_dim:
        raise ValueError(f"input of shape {x.shape} does not fit input_dim {spec.input_dim}")
    return _copy(x)


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


def make_trace(layer_names: Sequence[str], zs: Sequence[np.ndarray],
               hs: Sequence[np.ndarray]) -> Trace:
    """A :class:`Trace` from per-layer ``z`` and ``h`` arrays (first layer first)."""
    trace = Trace(output=hs[-1])
    for name, z, h in zip(layer_names, zs, hs, strict=True):
        trace.z[name], trace.h[name] = z, h
    return trace


def make_gradients(
    framework: str,
    spec_param_names: Sequence[str],
    loss: float,
    grads: dict[str, np.ndarray],
    layer_names: Sequence[str],
    deltas: Sequence[np.ndarray],
    output: np.ndarray,
) -> Gradients:
    """A :class:`Gradients` from framework-layout ``grads`` (by canonical name) and per-layer
    ``dL/dz`` arrays; gradients are converted back to the canonical layout."""
    canonical = {k: from_framework(framework, k, grads[k]) for k in spec_param_names}
    return Gradients(
        loss=float(loss),
        grads=canonical,
        deltas=dict(zip(layer_names, deltas, strict=True)),
        output=output,
    )
