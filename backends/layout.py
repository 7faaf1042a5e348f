"""Tensor layouts: the canonical (reference) layout against each framework's, in pure NumPy.

| thing                  | canonical                   | ``torch`` layout        | ``keras``  |
|------------------------|-----------------------------|-------------------------|------------|
| dense weight           | ``W [D_in, D_out]``         | ``Linear.weight = W.T`` | same       |
| dense bias             | ``[1, D]`` MLP, ``[D]`` CNN | ``[D]``                 | ``[D]``    |
| images, feature maps   | NHWC                        | NCHW                    | NHWC       |
| conv kernel            | HWIO                        | OIHW                    | HWIO       |
| first dense after conv | rows in NHWC flatten order  | rows in NCHW order      | NHWC       |

The ``keras`` layout is the canonical one (JAX uses it too). Biases follow one rule: a framework
holds ``[D]``; back in the canonical layout a bias takes the shape the spec's
``param_shapes()`` declares. A parameter is converted by its kind (``spec.param_kind(name)``:
``dense``, ``conv``, ``bias``, ``slope``) and, for the rows of the first dense layer after a
conv stack (``spec.flat_params``), the flatten order of ``spec.flat_map``.

Every function returns a new C-contiguous array (never a view into its argument), so a framework
tensor made from the result owns its memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nnparity.reference.family import Spec

FRAMEWORKS = ("torch", "keras")


def owned_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy that owns its memory."""
    return np.ascontiguousarray(a).copy()


def _check_framework(framework: str) -> None:
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework layout {framework!r}; known: {', '.join(FRAMEWORKS)}")


# --- dense layers --------------------------------------------------------------------------------


def dense_weight_to_torch(w: np.ndarray) -> np.ndarray:
    """Canonical ``W [D_in, D_out]`` -> ``nn.Linear.weight [D_out, D_in]`` (the transpose)."""
    return owned_copy(np.asarray(w).T)


def dense_weight_from_torch(weight: np.ndarray) -> np.ndarray:
    """``nn.Linear.weight [D_out, D_in]`` -> canonical ``W [D_in, D_out]``."""
    return owned_copy(np.asarray(weight).T)


def dense_weight_to_keras(w: np.ndarray) -> np.ndarray:
    """Canonical ``W [D_in, D_out]`` -> ``Dense.kernel [D_in, D_out]`` (the same layout)."""
    return owned_copy(w)


def dense_weight_from_keras(kernel: np.ndarray) -> np.ndarray:
    """``Dense.kernel [D_in, D_out]`` -> canonical ``W [D_in, D_out]``."""
    return owned_copy(kernel)


def bias_to_framework(b: np.ndarray) -> np.ndarray:
    """Canonical ``b [1, D]`` (MLP) or ``[D]`` (CNN) -> the frameworks' ``[D]``."""
    return owned_copy(np.asarray(b).reshape(-1))


def bias_from_framework(b: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The frameworks' ``[D]`` -> the canonical ``shape`` the spec declares for it."""
    return owned_copy(np.asarray(b).reshape(shape))


VECTOR_KINDS = ("slope", "bias", "scale", "mean", "variance")
"""Parameter kinds held as ``[D]`` by every framework (a batch normalisation's four too)."""

# --- parameters by name --------------------------------------------------------------------------


def to_framework(framework: str, name: str, value: np.ndarray, spec: Spec) -> np.ndarray:
    """A parameter (or a same-shaped optimiser slot) in ``framework``'s layout.

    By kind: ``dense`` weights transposed for ``torch`` (rows first permuted from NHWC to NCHW
    flatten order for ``spec.flat_params``); ``conv`` kernels HWIO -> OIHW for ``torch``;
    biases, PReLU slopes and scales (a layernorm's gamma) flattened to
    ``[D]`` (``[1]`` for a shared slope). The ``keras``
    layout is canonical.
    """
    _check_framework(framework)
    torch = framework == "torch"
    kind = spec.param_kind(name)
    if kind in VECTOR_KINDS:
        return bias_to_framework(value)
    if kind == "conv":
        return hwio_to_oihw(value) if torch else owned_copy(value)
    if torch and name in spec.flat_params:
        value = dense_rows_nhwc_to_nchw(value, *spec.flat_map)
    return dense_weight_to_torch(value) if torch else dense_weight_to_keras(value)


def from_framework(framework: str, name: str, value: np.ndarray, spec: Spec) -> np.ndarray:
    """Inverse of :func:`to_framework`: back to the canonical layout and shape."""
    _check_framework(framework)
    torch = framework == "torch"
    kind = spec.param_kind(name)
    if kind in VECTOR_KINDS:
        return bias_from_framework(value, spec.param_shapes()[name])
    if kind == "conv":
        return oihw_to_hwio(value) if torch else owned_copy(value)
    w = dense_weight_from_torch(value) if torch else dense_weight_from_keras(value)
    if torch and name in spec.flat_params:
        w = dense_rows_nchw_to_nhwc(w, *spec.flat_map)
    return w


# --- images, kernels, flatten order --------------------------------------------------------------


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """Images ``[N, H, W, C]`` -> ``[N, C, H, W]``."""
    return owned_copy(np.transpose(x, (0, 3, 1, 2)))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """Images ``[N, C, H, W]`` -> ``[N, H, W, C]``."""
    return owned_copy(np.transpose(x, (0, 2, 3, 1)))


def hwio_to_oihw(k: np.ndarray) -> np.ndarray:
    """Conv kernel ``[KH, KW, C_in, C_out]`` (canonical, Keras) -> torch's
    ``[C_out, C_in, KH, KW]``."""
    return owned_copy(np.transpose(k, (3, 2, 0, 1)))


def oihw_to_hwio(k: np.ndarray) -> np.ndarray:
    """torch's conv kernel ``[C_out, C_in, KH, KW]`` -> canonical ``[KH, KW, C_in, C_out]``."""
    return owned_copy(np.transpose(k, (2, 3, 1, 0)))


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
    return owned_copy(w[nchw_flatten_order(h, width, c)])


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


# --- traced tensors ------------------------------------------------------------------------------


def tensor_from_framework(framework: str, spec: Spec, key: str, value: np.ndarray) -> np.ndarray:
    """A traced tensor (``z.conv1``, ``h.pool1``, ``h.flatten``, ``z.fc1``, ...) or a delta
    (keyed ``z.<layer>``) -> canonical layout: torch's NCHW maps -> NHWC, torch's NCHW-order
    ``h.flatten`` -> NHWC order; everything else is copied."""
    value = np.asarray(value)
    if framework == "torch" and value.ndim == 4:
        return nchw_to_nhwc(value)
    if in_nchw_flatten_order(framework, spec, key):
        return flat_nchw_to_nhwc(value, *spec.flat_map)
    return owned_copy(value)


def in_nchw_flatten_order(framework: str, spec: Spec, key: str) -> bool:
    """Whether the traced ``key`` (``h.<name>``) is laid out along torch's NCHW flatten: the
    spec's ``flat_tensors`` (``h.flatten``, and ``h.dropout`` when dropout follows the flatten
    directly)."""
    kind, _, name = key.partition(".")
    return framework == "torch" and kind == "h" and name in spec.flat_tensors
