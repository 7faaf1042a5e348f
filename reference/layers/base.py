"""What every layer kind shares: the :class:`Layer` interface and the run state of one pass.

A network is an ordered tuple of layers (``spec.net``). Each layer kind is one module of this
package holding one frozen dataclass with a hand-derived forward/backward pair (Deep Learning
from Scratch's layer pairs), its parameters (full names, shapes, kinds) and its output shape.
:mod:`reference.network` walks the list: forward in order, backward in reverse.

Roles (``Layer.role``) fix what a layer writes into a :class:`~reference.results.Trace`:

- ``param`` (``dense``, ``conv2d``): its output is ``z[name]`` (and ``h[name]`` until an
  activation overwrites it); in backward the upstream gradient at its output is the
  delta ``dL/dz`` under ``name``.
- ``activation``: its output is ``h[name]``, ``name`` being the layer it follows.
- ``map`` (``maxpool``, ``flatten``, ``dropout``): its output is ``h[name]`` (dropout's only
  in training, unless ``traced_without_mask``).
- ``block`` (``residual``): a layer holding a sub-list (``net``) of layers; the walk records the
  sub-list's tensors (by their own roles) from the block's cache, then the block's output as
  ``h[name]``, and takes the sub-list's deltas from the block's backward.

Shapes are per sample (no batch axis): ``(D,)`` for a flat input, ``(H, W, C)`` for a map (NHWC).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

Params = dict[str, np.ndarray]
Shape = tuple[int, ...]


@dataclass
class Run:
    """The state one pass shares with every layer: the spec's ``dtype``, the checked 0/1
    dropout ``mask [N, units]`` (None: evaluation) with each dropout layer's ``columns``, and
    ``keep``: whether layers keep what spares their backward recomputing it (im2col matrices,
    arg-maxes); ``training``: layers use batch statistics (batch normalisation) and leave the
    state they update (running statistics, by parameter name) in ``updates``; ``pooled``: the
    indices of the relu layers that the max-pool after them applies in this pass (a training
    step's fusion: :mod:`reference.network`)."""

    dtype: np.dtype
    mask: np.ndarray | None = None
    columns: dict[str, slice] | None = None
    keep: bool = True
    training: bool = False
    pooled: frozenset[int] = frozenset()
    updates: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Layer:
    """One layer of a network. ``name`` keys its tensors in traces and deltas (set by the
    spec that builds the list; see :mod:`reference.netspec` for the rule)."""

    kind: ClassVar[str] = ""
    role: ClassVar[str] = "map"
    name: str

    def output_shape(self, shape: Shape) -> Shape:
        """Per-sample output shape for a per-sample input ``shape`` (``ValueError`` when the
        layer cannot take it)."""
        return shape

    def param_specs(self, shape: Shape) -> dict[str, tuple[Shape, str]]:
        """Full parameter name -> ``(shape, kind)`` for input ``shape``; kinds: ``dense``,
        ``conv`` (weights decayed by weight decay), ``bias``, ``slope``, ``scale``, and the
        state kinds ``mean``, ``variance`` (no gradient: :data:`STATE_KINDS`)."""
        return {}

    def forward(self, x: np.ndarray, params: Params, run: Run) -> tuple[np.ndarray, Any]:
        """``(y, cache)`` for a batch ``x``; ``cache`` is handed back to :meth:`backward`."""
        raise NotImplementedError

    def backward(self, dy: np.ndarray, x: np.ndarray, y: np.ndarray, cache: Any,
                 params: Params, run: Run, need_dx: bool) -> tuple[np.ndarray | None, Params]:
        """``(dL/dx, {param: dL/dparam})`` from ``dy = dL/dy``; ``dL/dx`` is None when not
        ``need_dx`` (no layer before this one has parameters)."""
        raise NotImplementedError

    def gradient_terms(self, dy: np.ndarray, x: np.ndarray, params: Params,
                       run: Run) -> Params:
        """Per parameter, the terms its gradient sums, by size: at least ``|dL/dparam|``, equal
        to it where nothing cancels (what rounding acts on: :func:`reference.network.
        gradient_scales`). ``{}``: none known, the gradient is judged by its own size."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The layer's JSON form: ``kind`` and its fields, without the names the spec gives."""
        data = {f.name: v for f, v in zip(fields(self), asdict(self).values(), strict=True)
                if f.name not in NAME_FIELDS}
        return {"kind": self.kind, **data}


STATE_KINDS = frozenset({"mean", "variance"})
"""Parameter kinds that are state: updated by a training pass, never by a gradient."""

NAME_FIELDS = frozenset({"name", "weight", "bias", "slope", "flat_bias", "traced_without_mask"})
"""Fields a spec sets when it builds the list (names and layout), not written by the user."""


def bilinear_terms(layer: Layer, dy: np.ndarray, x: np.ndarray, params: Params,
                   run: Run) -> Params:
    """:meth:`Layer.gradient_terms` of a layer whose parameter gradients are sums of products
    of its input and ``dy`` (``dense``, ``conv2d``): its backward on ``|dy|`` and ``|x|``."""
    return layer.backward(np.abs(dy), np.abs(x), None, None, params, run, False)[1]


def as_param(params: Params, name: str, dtype: np.dtype) -> np.ndarray:
    """``params[name]`` in the pass's dtype (no copy when it already is)."""
    value = params[name]
    if type(value) is np.ndarray and value.dtype == dtype:  # a trainer's own arrays: every step
        return value
    return np.asarray(value).astype(dtype, copy=False)


def positive_int(value: Any, what: str) -> int:
    """``value`` when it is a positive integer, else ``ValueError`` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def flat(shape: Shape, kind: str) -> int:
    """The width of a flat per-sample ``shape`` (``ValueError``: a map needs a flatten first)."""
    if len(shape) != 1:
        raise ValueError(f"{kind} needs a flat input, got a map of shape {list(shape)}: "
                         "put a flatten layer before it")
    return shape[0]


def spatial(shape: Shape, kind: str) -> tuple[int, int, int]:
    """``(H, W, C)`` of a map-shaped per-sample ``shape`` (``ValueError`` for a flat one)."""
    if len(shape) != 3:
        raise ValueError(f"{kind} needs an (H, W, C) input, got shape {list(shape)}")
    return shape  # type: ignore[return-value]
