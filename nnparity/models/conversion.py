"""The classic mistakes of a hand-written weight conversion between two models of one
architecture, found by comparing the second model's weights with the first's (both in the
canonical layout: dense ``W [D_in, D_out]``, conv kernels HWIO, NHWC flatten order).

Each mistake is a transform of the first model's tensor: a tensor of the second model that
equals (at the tolerance) the transform of the first's is explained by that mistake. The port
check (:mod:`.port`) confirms an explanation by re-running the second model with the tensor
repaired (the first's, converted through the canonical layout).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnparity.backends import layout
from nnparity.backends.compare import compare_tensor
from nnparity.reference.family import Spec
from nnparity.reference.params import Params

Transform = Callable[[np.ndarray], np.ndarray]


def _conv(w: np.ndarray) -> list[tuple[str, Transform]]:
    kh, kw, cin, cout = w.shape
    return [
        ("kernel spatially transposed (H and W swapped in the copy)",
         lambda a: a.transpose(1, 0, 2, 3)),
        ("kernel flipped (rotated by 180 degrees: a convolution's kernel copied as a "
         "cross-correlation's)", lambda a: a[::-1, ::-1]),
        ("OIHW/HWIO mix-up: the kernel reshaped where it needs a transpose "
         "(OIHW <-> HWIO is transpose(3, 2, 0, 1) / (2, 3, 1, 0))",
         lambda a: a.transpose(3, 2, 0, 1).reshape(kh, kw, cin, cout)),
        ("OIHW/HWIO mix-up: the kernel reshaped where it needs a transpose "
         "(OIHW <-> HWIO is transpose(3, 2, 0, 1) / (2, 3, 1, 0))",
         lambda a: a.reshape(cout, cin, kh, kw).transpose(2, 3, 1, 0)),
    ]


def _dense(name: str, w: np.ndarray, spec: Spec) -> list[tuple[str, Transform]]:
    rows, cols = w.shape
    out: list[tuple[str, Transform]] = []
    if name in spec.flat_params:
        flat = spec.flat_map
        text = (f"flatten order: the rows of {name} are in the other flatten order (NCHW vs "
                "NHWC): the first dense layer after the convolutions was copied without "
                "permuting its rows")
        out += [(text, lambda a: layout.dense_rows_nhwc_to_nchw(a, *flat)),
                (text, lambda a: layout.dense_rows_nchw_to_nhwc(a, *flat))]
    text = ("dense weight not transposed (torch's Linear.weight is [out, in], Keras' "
            "Dense.kernel [in, out]; copied as is or reshaped)")
    out += [(text, lambda a: a.T.reshape(rows, cols)),
            (text, lambda a: a.reshape(cols, rows).T)]
    return out


def _bias() -> list[tuple[str, Transform]]:
    return [("bias missing (zeros where the first model has its bias)", np.zeros_like),
            ("bias shifted by one unit", lambda a: np.roll(a, 1, axis=-1)),
            ("bias shifted by one unit", lambda a: np.roll(a, -1, axis=-1))]


def candidates(name: str, value: np.ndarray, spec: Spec) -> list[tuple[str, Transform]]:
    """``(mistake, transform of the first model's tensor)`` for parameter ``name``."""
    kind = spec.param_kind(name)
    if kind == "conv":
        return _conv(value)
    if kind == "dense":
        return _dense(name, value, spec)
    if kind == "bias":
        return _bias()
    return []


def _close(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    return compare_tensor("update", "w", a.astype(np.float64), b.astype(np.float64), tol).passed


def _slopes(ours: np.ndarray, theirs: np.ndarray) -> str | None:
    """PReLU slopes: one value copied into every unit where the first model's differ."""
    if theirs.size > 1 and np.all(theirs == theirs.flat[0]) and not np.all(ours == ours.flat[0]):
        return (f"PReLU slopes shared: every unit's slope is {float(theirs.flat[0]):.4g} where "
                "the first model has one slope per unit")
    return None


def differing(ours: Params, theirs: Params, tol: float) -> list[str]:
    """The parameters whose values differ between the two models (canonical layout)."""
    return [k for k in ours if not _close(np.asarray(theirs[k]), np.asarray(ours[k]), tol)]


def explain(spec: Spec, ours: Params, theirs: Params, tol: float) -> dict[str, str | None]:
    """Differing parameter -> the mistake that turns the first model's tensor (``ours``) into the
    second's (``theirs``), or None when no known mistake does."""
    found: dict[str, str | None] = {}
    for name in differing(ours, theirs, tol):
        a, b = np.asarray(ours[name]), np.asarray(theirs[name])
        found[name] = _slopes(a, b) if spec.param_kind(name) == "slope" else None
        for text, transform in candidates(name, a, spec):
            if found[name] is None and np.any(a != 0) and _close(b, transform(a), tol):
                found[name] = text
    return found
